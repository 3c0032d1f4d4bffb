"""The torch provider's vectors are sentence-transformers' own encode of the same texts."""

from __future__ import annotations

import math

from processors.embedding.torch_provider import TorchProvider, bundled_model_path

TEXTS = [
    "TimeoutError: timed out after <duration>",
    "KeyError: <*>",
    "ConnectionRefusedError: [Errno <num>] Connection refused",
    "psycopg.errors.DeadlockDetected: deadlock detected on relation <*>",
]


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_vectors_equal_sentence_transformers_encode() -> None:
    from sentence_transformers import SentenceTransformer

    provider = TorchProvider("all-MiniLM-L6-v2", device="cpu").start()
    ours = provider.embed(TEXTS)
    reference = SentenceTransformer(bundled_model_path(), device="cpu").encode(
        TEXTS, batch_size=len(TEXTS)
    )
    assert [len(vector) for vector in ours] == [384] * len(TEXTS)
    for vector, expected in zip(ours, reference, strict=True):
        assert cosine(vector, [float(value) for value in expected]) >= 0.9999


def test_many_model_batches_in_one_call_come_back_in_input_order() -> None:
    """Handed several batches' worth, encode() sorts the texts by length; the vectors must still
    be those of the texts at the same positions."""
    from sentence_transformers import SentenceTransformer

    provider = TorchProvider("all-MiniLM-L6-v2", device="cpu", batch_size=2).start()
    texts = [*TEXTS, "x", "a much longer text: " + " ".join(TEXTS)]
    ours = provider.embed(texts)
    model = SentenceTransformer(bundled_model_path(), device="cpu")
    for text, vector in zip(texts, ours, strict=True):
        alone = [float(value) for value in model.encode([text])[0]]
        assert cosine(vector, alone) >= 0.9999
