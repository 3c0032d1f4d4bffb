"""Categories of raw messages (`jobtrail categorize`): each message is fingerprinted, its template
embedded exactly as the embedding consumers embed an error's template, and classified with its
words, so a message gets here the category its error would get in the pipeline."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jobtrail.categories.classifier import CategoryClassifier, Embed, Matrix, Thresholds
from jobtrail.categories.definitions import CategorySet
from jobtrail.categories.lexicon import evidence
from jobtrail.errors import JobtrailError
from processors.embedding.ports import EmbeddingProvider, RefusedText
from processors.embedding.texts import EmbedText, text_of_template
from processors.fingerprint import fingerprint_message


def provider_embed(provider: EmbeddingProvider) -> Embed:
    """`provider` as the classifier's `embed`: every text must come back as a vector."""

    def embed(texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for text, result in zip(texts, provider.embed(texts), strict=True):
            if isinstance(result, RefusedText):
                raise JobtrailError(f"the provider refused {text[:80]!r}: {result.detail}")
            vectors.append(list(result))
        return vectors

    return embed


def build_classifier(
    categories: CategorySet, provider: EmbeddingProvider, thresholds: Thresholds
) -> CategoryClassifier:
    return CategoryClassifier.build(categories, provider_embed(provider), thresholds)


def message_inputs(
    messages: Sequence[str], provider: EmbeddingProvider, dimension: int
) -> tuple[Matrix, list[frozenset[str]]]:
    """The classifier's inputs for raw messages: their templates' vectors (each distinct template
    embedded once; an empty one gets a zero vector of `dimension`, which no category reaches)
    and their words."""
    templates = [fingerprint_message(message).template for message in messages]
    texts: dict[str, str | None] = {}
    for template in templates:
        if template not in texts:
            text = text_of_template(template, provider.max_chars)
            texts[template] = text.text if isinstance(text, EmbedText) else None
    wanted = sorted({t for t in texts.values() if t is not None})
    found = dict(zip(wanted, provider_embed(provider)(wanted), strict=True)) if wanted else {}
    zero = [0.0] * dimension
    vectors = np.asarray(
        [found.get(texts[t] or "", zero) for t in templates], dtype=np.float32
    ).reshape(len(templates), dimension)
    words = [evidence(t, m) for t, m in zip(templates, messages, strict=True)]
    return vectors, words
