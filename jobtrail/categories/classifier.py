"""The category classifier: every error gets one category or none, all errors in one batch.

A category's score for an error is the cosine between the error's vector and the category's
centroid (the mean vector of its label texts: its name, its description, both together, "Error:
<name>", and each example raw and masked as a template, the way error vectors are made), plus
`lexical_weight` times the words the error shares with the category's texts, each word weighted
by how few categories use it (a word every category uses tells none apart) and the sum capped.
The best category wins when its score reaches `min_score`, leads the second by `min_margin` and
beats the error's cosine to the built-in background (categories/background.py: bugs and bad
input, what a team's list leaves out) by `background_margin`; otherwise the error is
uncategorized.

Pure: label-text vectors come in through `embed`, once per categories file and model; errors are
never embedded here. Classifying N errors is one (N x d) @ (d x C) product plus one weighted
count per category over the (error, word) pairs that hit a category's vocabulary.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from jobtrail.categories.background import BACKGROUND_TEXTS, OVERLAP
from jobtrail.categories.definitions import Category, CategorySet
from jobtrail.categories.lexicon import evidence, tokens
from jobtrail.errors import ConfigurationError
from processors.fingerprint import fingerprint_message

Embed = Callable[[Sequence[str]], Sequence[Sequence[float]]]
Matrix = npt.NDArray[np.float32]
LEXICAL_CAP = 6.0  # shared-word weight that counts as full lexical evidence (~3 specific words)
NONE = -1  # the label of an uncategorized error


def label_texts(category: Category) -> list[str]:
    """The texts a category's centroid is the mean of (duplicates once)."""
    texts = [
        category.name,
        category.description,
        f"{category.name}: {category.description}",
        f"Error: {category.name}",
        *category.examples,
        *(fingerprint_message(example).template for example in category.examples),
    ]
    return list(dict.fromkeys(texts))


@dataclass(frozen=True, slots=True)
class Labels:
    """One row per error: its category's index (NONE: uncategorized), best score and margin."""

    index: npt.NDArray[np.int64]
    score: npt.NDArray[np.float32]
    margin: npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Scores:
    """N errors' scores: per category (N x C), and their cosine to the background (N)."""

    category: Matrix
    background: Matrix


@dataclass(frozen=True, slots=True)
class Thresholds:
    min_score: float
    min_margin: float
    lexical_weight: float
    background_margin: float | None = None  # None: no background


class CategoryClassifier:
    def __init__(
        self,
        categories: CategorySet,
        centroids: Matrix,
        vocabulary: dict[str, int],
        word_weights: Matrix,
        thresholds: Thresholds,
        background: Matrix | None = None,
    ) -> None:
        self.categories = categories
        self.centroids = centroids  # C x d, unit rows
        self.vocabulary = vocabulary  # word -> row of word_weights
        self.word_weights = word_weights  # V x C
        self.thresholds = thresholds
        self.background = background  # K x d unit rows, those far from every category

    @classmethod
    def build(
        cls, categories: CategorySet, embed: Embed, thresholds: Thresholds
    ) -> CategoryClassifier:
        texts = [label_texts(c) for c in categories.categories]
        flat = [t for group in texts for t in group]
        with_background = thresholds.background_margin is not None
        extra = list(BACKGROUND_TEXTS) if with_background else []
        vectors = _unit_rows(np.asarray(embed(flat + extra), dtype=np.float32))
        centroids, start = [], 0
        for group in texts:
            centroids.append(vectors[start : start + len(group)].mean(axis=0))
            start += len(group)
        centroid_matrix = _unit_rows(np.stack(centroids))
        background = None
        if with_background:
            candidates = vectors[len(flat) :]
            background = candidates[(candidates @ centroid_matrix.T).max(axis=1) <= OVERLAP]
        vocabulary, weights = _word_weights(categories)
        return cls(categories, centroid_matrix, vocabulary, weights, thresholds, background)

    @property
    def dimension(self) -> int:
        return int(self.centroids.shape[1])

    def scores(self, vectors: Matrix, words: Sequence[frozenset[str]]) -> Scores:
        """The scores of N errors (their vectors and evidence words, in the same order)."""
        if len(vectors) != len(words):
            raise ValueError(f"{len(vectors)} vectors but {len(words)} word sets")
        if len(vectors) and vectors.shape[1] != self.dimension:
            raise ConfigurationError(
                f"error vectors have {vectors.shape[1]} dimensions, the categories' model "
                f"{self.dimension}: they come from different embedding models"
            )
        unit = _unit_rows(vectors.astype(np.float32, copy=False))
        semantic: Matrix = unit @ self.centroids.T
        weight = self.thresholds.lexical_weight
        if weight and self.vocabulary:
            semantic = semantic + weight * self._lexical(words)
        background = np.full(len(unit), -np.inf, dtype=np.float32)
        if self.background is not None and len(self.background):
            background = (unit @ self.background.T).max(axis=1)
        return Scores(semantic, background)

    def classify(self, vectors: Matrix, words: Sequence[frozenset[str]]) -> Labels:
        return self.decide(self.scores(vectors, words))

    def decide(self, all_scores: Scores) -> Labels:
        scores = all_scores.category
        n, c = scores.shape
        if c == 1:
            best = scores[:, 0]
            margin = np.full(n, np.inf, dtype=np.float32)
            index = np.zeros(n, dtype=np.int64)
        else:
            top2 = np.partition(scores, c - 2, axis=1)[:, -2:]
            best, margin = top2[:, 1], top2[:, 1] - top2[:, 0]
            index = scores.argmax(axis=1).astype(np.int64)
        keep = (best >= self.thresholds.min_score) & (margin >= self.thresholds.min_margin)
        if self.thresholds.background_margin is not None:
            keep &= best >= all_scores.background + self.thresholds.background_margin
        return Labels(np.where(keep, index, NONE), best.astype(np.float32),
                      margin.astype(np.float32))  # fmt: skip

    def name_of(self, index: int) -> str | None:
        return None if index == NONE else self.categories.categories[index].name

    def _lexical(self, words: Sequence[frozenset[str]]) -> Matrix:
        rows: list[int] = []
        cols: list[int] = []
        vocabulary = self.vocabulary
        for row, found in enumerate(words):
            for word in found:
                col = vocabulary.get(word)
                if col is not None:
                    rows.append(row)
                    cols.append(col)
        n, c = len(words), self.word_weights.shape[1]
        lexical = np.zeros((n, c), dtype=np.float32)
        if rows:
            row_index = np.asarray(rows, dtype=np.int64)
            hits = self.word_weights[np.asarray(cols, dtype=np.int64)]
            for category in range(c):
                lexical[:, category] = np.bincount(row_index, weights=hits[:, category],
                                                   minlength=n)  # fmt: skip
        capped: Matrix = (np.minimum(lexical, LEXICAL_CAP) / LEXICAL_CAP).astype(np.float32)
        return capped


def _word_weights(categories: CategorySet) -> tuple[dict[str, int], Matrix]:
    """Each category's words (name, description, examples with their codes spelled out), weighted
    by log(C / number of categories using the word): 0 for a word they all use."""
    documents = []
    for category in categories.categories:
        words = set(tokens(f"{category.name} {category.description}"))
        for example in category.examples:
            words |= evidence(fingerprint_message(example).template, example)
        documents.append(words)
    count = len(documents)
    used_by: dict[str, int] = {}
    for words in documents:
        for word in words:
            used_by[word] = used_by.get(word, 0) + 1
    vocabulary = {w: i for i, w in enumerate(sorted(w for w, k in used_by.items() if k < count))}
    weights = np.zeros((len(vocabulary), count), dtype=np.float32)
    for col, words in enumerate(documents):
        for word in words:
            row = vocabulary.get(word)
            if row is not None:
                weights[row, col] = math.log(count / used_by[word])
    return vocabulary, weights


def _unit_rows(matrix: Matrix) -> Matrix:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    unit: Matrix = (matrix / np.where(norms == 0, 1, norms)).astype(np.float32, copy=False)
    return unit
