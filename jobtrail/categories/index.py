"""Category counts over the analytics read model.

Every counted error (fingerprint) with a vector of the configured model is classified in one
batch; its occurrences (overall, per job name, per event-time hour) are summed into its category.
Labels are kept per fingerprint and redone, all in one batch, when the categories file's content
or the classifier changes; a refresh classifies only fingerprints it has not labeled yet, from the
vectors in the read model: no error is ever embedded again. Errors without a vector of the model
yet (the embedder is behind) are counted apart, as `not_embedded`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from jobtrail.categories.classifier import CategoryClassifier, Thresholds
from jobtrail.categories.definitions import NOT_EMBEDDED, UNCATEGORIZED, CategorySet
from jobtrail.categories.lexicon import evidence
from projections.analytics.model import ErrorStats
from projections.analytics.redis_store import AnalyticsRedisStore, decode_vector, error_from_json
from projections.redis import _unavailable_as_typed

CHUNK = 1000


@dataclass(slots=True)
class CategoryTotals:
    occurrences: int = 0
    fingerprints: int = 0
    job_names: dict[str, int] = field(default_factory=dict)
    hours: dict[int, int] = field(default_factory=dict)
    top: list[tuple[int, str]] = field(default_factory=list)  # (count, fingerprint), best first


@dataclass(frozen=True, slots=True)
class CategoryView:
    """One refresh's answer: totals per category name (in the file's order, then uncategorized
    and not_embedded), what each error was labeled, and what produced it."""

    categories: CategorySet
    model: str
    progress_ms: int
    totals: dict[str, CategoryTotals]
    labels: dict[str, tuple[str, float]]  # fingerprint -> (category name, score)
    errors: dict[str, ErrorStats]


@dataclass(slots=True)
class _Labeled:
    vector: np.ndarray
    words: frozenset[str]
    name: str = UNCATEGORIZED
    score: float = 0.0


class CategoryIndex:
    TOP = 20  # top errors kept per category

    def __init__(
        self,
        store: AnalyticsRedisStore,
        model: str,
        classifier_for: Callable[[], CategoryClassifier],
    ) -> None:
        self.store = store
        self.model = model
        self._classifier_for = classifier_for
        self._lock = threading.Lock()
        self._namespace = ""
        self._labeled: dict[str, _Labeled] = {}
        self._pending: set[str] = set()  # labeled fingerprints without a label yet
        self._labeled_by: tuple[str, Thresholds] | None = None  # what labeled them

    def view(self) -> CategoryView:
        with self._lock, _unavailable_as_typed():
            ns = self.store.current()  # first: with Redis down, no classifier (model) is built
            classifier = self._classifier_for()
            if ns != self._namespace:  # a rebuild switched generations: start over
                self._namespace, self._labeled, self._pending = ns, {}, set()
            errors = dict(self._errors(ns))
            self._load_vectors(ns, errors, classifier.dimension)
            self._label(classifier)
            progress = int(self.store.client.get(ns + "progress") or 0)
            return self._aggregate(classifier, errors, progress)

    def _errors(self, ns: str) -> Iterator[tuple[str, ErrorStats]]:
        client = self.store.client
        prints = [str(p) for p in client.zrange(ns + "errors", 0, -1)]
        for start in range(0, len(prints), CHUNK):
            chunk = prints[start : start + CHUNK]
            for fp, raw in zip(
                chunk, client.mget([f"{ns}error:{fp}" for fp in chunk]), strict=True
            ):
                if raw is not None:
                    yield fp, error_from_json(json.loads(str(raw)))

    def _load_vectors(self, ns: str, errors: dict[str, ErrorStats], dimension: int) -> None:
        """Vectors of the model not loaded yet; one of another dimension (another model under
        the same name) stays out, its error counted as not embedded."""
        wanted = [fp for fp, stats in errors.items() if fp not in self._labeled
                  and stats.models.get(self.model) == dimension]  # fmt: skip
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            keys = [f"{ns}vector:{fp}:{self.model}" for fp in chunk]
            for fp, raw in zip(chunk, self.store.client.mget(keys), strict=True):
                if raw is None:
                    continue
                stats = errors[fp]
                vector = np.asarray(decode_vector(str(raw)), dtype=np.float32)
                if vector.shape != (dimension,):
                    continue
                self._labeled[fp] = _Labeled(vector, evidence(stats.template, stats.sample))
                self._pending.add(fp)

    def _label(self, classifier: CategoryClassifier) -> None:
        """Labels the new fingerprints, or every one when the classifier changed: one batch."""
        by = (classifier.categories.digest, classifier.thresholds)
        todo = list(self._labeled) if by != self._labeled_by else sorted(self._pending)
        if todo:
            rows = [self._labeled[fp] for fp in todo]
            vectors = np.stack([r.vector for r in rows])
            labels = classifier.classify(vectors, [r.words for r in rows])
            for row, index, score in zip(rows, labels.index, labels.score, strict=True):
                row.name = classifier.name_of(int(index)) or UNCATEGORIZED
                row.score = float(score)
        # Only once every label is in: a classification that raised is redone next time.
        self._pending = set()
        self._labeled_by = by

    def _aggregate(
        self, classifier: CategoryClassifier, errors: dict[str, ErrorStats], progress: int
    ) -> CategoryView:
        totals = {name: CategoryTotals() for name in
                  [*classifier.categories.names, UNCATEGORIZED, NOT_EMBEDDED]}  # fmt: skip
        labels: dict[str, tuple[str, float]] = {}
        for fp, stats in errors.items():
            row = self._labeled.get(fp)
            name = NOT_EMBEDDED if row is None else row.name
            if row is not None:
                labels[fp] = (row.name, row.score)
            total = totals.get(name) or totals[UNCATEGORIZED]
            total.occurrences += stats.count
            total.fingerprints += 1
            _merge(total.job_names, stats.job_names)
            _merge(total.hours, stats.hours)
            total.top.append((stats.count, fp))
        for total in totals.values():
            total.top = sorted(total.top, key=lambda item: (-item[0], item[1]))[: self.TOP]
        return CategoryView(classifier.categories, self.model, progress, totals, labels, errors)


def _merge(into: dict[Any, int], counts: dict[Any, int]) -> None:
    for key, count in counts.items():
        into[key] = into.get(key, 0) + count


def classify_all(
    classifier: CategoryClassifier, vectors: Sequence[np.ndarray], words: Sequence[frozenset[str]]
) -> list[str]:
    """Category names of errors given directly (tests, recomputations)."""
    if not vectors:
        return []
    labels = classifier.classify(np.stack(vectors), words)
    return [classifier.name_of(int(i)) or UNCATEGORIZED for i in labels.index]
