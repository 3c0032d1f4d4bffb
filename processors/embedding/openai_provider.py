"""Embeddings from the OpenAI API, or any server implementing its embeddings endpoint.

The official client retries 429 and 5xx itself, with exponential backoff that honours
Retry-After (`max_retries`); what still fails after that is `ProviderUnavailableError`, and the
embedder's circuit breaker takes over. Requests are split to stay within the API's limits. A
request the API refuses for its inputs (400, 422) is bisected down to the refused texts, which come
back as `RefusedText` (their requests go to the DLQ); the rest of the batch gets its vectors.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from pydantic import SecretStr

from jobtrail.errors import JobtrailError
from processors.embedding.ports import Embedding, ProviderUnavailableError, RefusedText

if TYPE_CHECKING:
    from openai import OpenAI

# The API's documented limits: 2048 inputs per request, 8192 tokens per input, 300,000 tokens
# per request. Characters stand in for tokens (a token is at least one character), so these
# bounds hold whatever the tokenizer.
MAX_INPUTS = 2048
MAX_INPUT_CHARS = 8192
MAX_REQUEST_CHARS = 300_000


def request_batches(
    texts: Sequence[str], max_inputs: int = MAX_INPUTS, max_chars: int = MAX_REQUEST_CHARS
) -> Iterator[tuple[int, int]]:
    """(start, end) slices of `texts`, each within the input-count and size limits."""
    start, size = 0, 0
    for index, text in enumerate(texts):
        if index > start and (index - start >= max_inputs or size + len(text) > max_chars):
            yield start, index
            start, size = index, 0
        size += len(text)
    if start < len(texts):
        yield start, len(texts)


class OpenAIProvider:
    def __init__(
        self,
        model: str,
        *,
        api_key: SecretStr | None,
        base_url: str | None = None,
        timeout_s: float = 30.0,
        max_retries: int = 5,
        max_chars: int = MAX_INPUT_CHARS,
    ) -> None:
        self._model = model
        self._api_key = api_key
        self._base_url = base_url
        self._timeout_s = timeout_s
        self._max_retries = max_retries
        self._max_chars = max_chars
        self._client: OpenAI | None = None

    @property
    def model(self) -> str:
        return self._model

    @property
    def max_chars(self) -> int:
        return self._max_chars

    def start(self) -> OpenAIProvider:
        try:
            from openai import OpenAI
        except ImportError as exc:
            raise JobtrailError(
                "the OpenAI provider needs the openai package: pip install -e '.[embed-openai]'"
            ) from exc
        key = self._api_key.get_secret_value() if self._api_key else "unset"
        self._client = OpenAI(api_key=key, base_url=self._base_url, timeout=self._timeout_s,
                              max_retries=self._max_retries)  # fmt: skip
        return self

    def embed(self, texts: Sequence[str]) -> list[Embedding]:
        embeddings: list[Embedding] = []
        for start, end in request_batches(texts):
            embeddings.extend(self._embed_isolating(list(texts[start:end])))
        return embeddings

    def _embed_isolating(self, texts: list[str]) -> list[Embedding]:
        """One request; when the API refuses it (400/422), halves it until the refused texts are
        alone, so one bad input costs its own dead letter and about log2(n) extra requests, never
        its neighbours' vectors."""
        try:
            return list(self._request(texts))
        except _InputRefusedError as refused:
            if len(texts) == 1:
                return [RefusedText("provider_refused", refused.detail)]
        middle = len(texts) // 2
        return self._embed_isolating(texts[:middle]) + self._embed_isolating(texts[middle:])

    def _request(self, texts: list[str]) -> list[list[float]]:
        import openai

        client = self._client or self.start()._client
        assert client is not None
        try:
            response = client.embeddings.create(
                model=self._model, input=texts, encoding_format="float"
            )
        except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
            raise _InputRefusedError(f"{exc.status_code}: {exc.message}"[:1000]) from exc
        except (openai.APIConnectionError, openai.RateLimitError,
                openai.InternalServerError) as exc:  # fmt: skip
            raise ProviderUnavailableError(f"embeddings endpoint: {exc}") from exc
        ordered = sorted(response.data, key=lambda item: item.index)
        if len(ordered) != len(texts):
            raise ProviderUnavailableError(f"asked for {len(texts)} embeddings, got {len(ordered)}")
        return [list(item.embedding) for item in ordered]


class _InputRefusedError(Exception):
    """The API refused a request for its inputs (internal: becomes RefusedText per text)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail
