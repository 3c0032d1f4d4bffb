"""Categories as the API, the CLI and Prometheus ask for them: the classifier for the configured
file (rebuilt when the file's content changes, its label texts embedded once per content), the
index over the analytics read model, and pydantic answers.

A file that turns bad while the server runs does not take the categories down: the last good file
keeps serving, and every answer carries the error (`file_error`) until the file is fixed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

import structlog
from pydantic import BaseModel, Field

from jobtrail.categories.categorize import build_classifier
from jobtrail.categories.classifier import CategoryClassifier
from jobtrail.categories.definitions import (
    NOT_EMBEDDED,
    UNCATEGORIZED,
    CategoriesFileError,
    CategorySet,
    load_categories,
)
from jobtrail.categories.index import CategoryIndex, CategoryView
from jobtrail.categories.settings import CategorySettings
from jobtrail.errors import JobtrailError
from jobtrail.refresh import RefreshAhead
from jobtrail.times import utc_from_ms
from processors.embedding.ports import EmbeddingProvider
from projections.analytics.model import HOUR_MS
from projections.analytics.redis_store import AnalyticsRedisStore

log = structlog.get_logger("jobtrail.categories")


class UnknownCategoryError(JobtrailError):
    """No category of that name in the categories file."""


class CategoryCount(BaseModel):
    name: str = Field(description="a category of the file, uncategorized or not_embedded")
    occurrences: int = Field(description="sum of its errors' occurrences")
    fingerprints: int = Field(description="distinct errors in it")
    share: float = Field(description="its part of all occurrences counted")


class CategoriesAnswer(BaseModel):
    categories_file: str
    digest: str = Field(description="SHA-256 of the file's categories: labels follow it")
    model: str = Field(description="the embedding model whose vectors are classified")
    job_name: str | None
    since: datetime | None
    progress: datetime | None = Field(description="the latest event time in the read model")
    total: int = Field(description="occurrences counted")
    categories: list[CategoryCount] = Field(description="the file's order, then the rest")
    file_error: str | None = Field(description="the file is bad now: the last good one serves")


class HourCount(BaseModel):
    hour: datetime
    occurrences: int


class TopError(BaseModel):
    fingerprint: str
    template: str
    error_type: str
    occurrences: int
    score: float | None = Field(description="its best category score")


class CategoryDetail(CategoryCount):
    description: str | None
    job_names: dict[str, int]
    hours: list[HourCount] = Field(description="occurrences per event-time hour, oldest first")
    top_errors: list[TopError] = Field(description="most frequent first")


class ClassifierSource:
    """The classifier of the configured file's current content."""

    def __init__(
        self, settings: CategorySettings, provider: Callable[[], EmbeddingProvider]
    ) -> None:
        self.settings = settings
        self._provider = provider
        self._lock = threading.Lock()
        self._classifier: CategoryClassifier | None = None
        self._opened: EmbeddingProvider | None = None  # one model load per process
        self.file_error: str | None = None

    def __call__(self) -> CategoryClassifier:
        with self._lock:
            try:
                categories = load_categories(self.settings.file)
                self.file_error = None
            except CategoriesFileError as exc:
                if self._classifier is None:
                    raise
                if self.file_error != str(exc):
                    log.error("categories file is bad; the last good one serves", error=str(exc))
                self.file_error = str(exc)
                return self._classifier
            if self._classifier is None or self._classifier.categories.digest != categories.digest:
                self._classifier = self._build(categories)
            return self._classifier

    def _build(self, categories: CategorySet) -> CategoryClassifier:
        s = self.settings
        log.info("building the category classifier", file=categories.source,
                 categories=len(categories.categories))  # fmt: skip
        thresholds = s.thresholds()
        if self._opened is None:
            self._opened = self._provider()
        return build_classifier(categories, self._opened, thresholds)


class CategoryService:
    def __init__(
        self,
        store: AnalyticsRedisStore,
        model: str,
        settings: CategorySettings,
        provider: Callable[[], EmbeddingProvider],
    ) -> None:
        self.source = ClassifierSource(settings, provider)
        self.index = CategoryIndex(store, model, self.source)
        self._views = RefreshAhead(self.index.view, settings.refresh_s)

    def view(self) -> CategoryView:
        return self._views.get()

    def warm(self) -> None:
        """Builds the classifier and the first view in the background (a model load), so the
        first page or scrape does not wait for it."""

        def run() -> None:
            try:
                self.view()
            except Exception as exc:  # the first request will report it
                log.warning("categories not ready yet", error=str(exc))

        threading.Thread(target=run, name="categories-warm", daemon=True).start()

    def categories(
        self, *, job_name: str | None = None, since: datetime | None = None
    ) -> CategoriesAnswer:
        view = self.view()
        counts = _counts(view, job_name, since)
        total = sum(occurrences for occurrences, _ in counts.values())
        return CategoriesAnswer(
            categories_file=view.categories.source, digest=view.categories.digest,
            model=view.model, job_name=job_name, since=since,
            progress=utc_from_ms(view.progress_ms) if view.progress_ms else None,
            total=total, file_error=self.source.file_error,
            categories=[CategoryCount(name=name, occurrences=n, fingerprints=k,
                                      share=n / total if total else 0.0)
                        for name, (n, k) in counts.items()],
        )  # fmt: skip

    def category(self, name: str, *, top: int = 10) -> CategoryDetail:
        view = self.view()
        totals = view.totals.get(name)
        if totals is None:
            raise UnknownCategoryError(
                f"no category {name!r} in {view.categories.source} (nor {UNCATEGORIZED!r}, "
                f"{NOT_EMBEDDED!r})"
            )
        grand = sum(t.occurrences for t in view.totals.values())
        description = next((c.description for c in view.categories.categories if c.name == name),
                           None)  # fmt: skip
        top_errors = []
        for count, fp in totals.top[:top]:
            stats = view.errors[fp]
            label = view.labels.get(fp)
            top_errors.append(TopError(fingerprint=fp, template=stats.template,
                                       error_type=stats.error_type, occurrences=count,
                                       score=None if label is None else label[1]))  # fmt: skip
        return CategoryDetail(
            name=name, occurrences=totals.occurrences, fingerprints=totals.fingerprints,
            share=totals.occurrences / grand if grand else 0.0, description=description,
            job_names=dict(sorted(totals.job_names.items())),
            hours=[HourCount(hour=utc_from_ms(h), occurrences=n)
                   for h, n in sorted(totals.hours.items())],
            top_errors=top_errors,
        )  # fmt: skip


def _counts(
    view: CategoryView, job_name: str | None, since: datetime | None
) -> dict[str, tuple[int, int]]:
    """(occurrences, fingerprints) per category name, within a job name or since a time."""
    if job_name is None and since is None:
        return {name: (t.occurrences, t.fingerprints) for name, t in view.totals.items()}
    since_hour = None
    if since is not None:
        ms = int(since.timestamp() * 1000)
        since_hour = ms - ms % HOUR_MS  # hour buckets: the hour `since` falls in counts whole
    counts = {name: [0, 0] for name in view.totals}
    for fp, stats in view.errors.items():
        name = view.labels.get(fp, (NOT_EMBEDDED, 0.0))[0]
        if job_name is not None:
            n = stats.job_names.get(job_name, 0)
        else:
            n = sum(c for hour, c in stats.hours.items() if hour >= (since_hour or 0))
        if n:
            counts[name][0] += n
            counts[name][1] += 1
    return {name: (n, k) for name, (n, k) in counts.items()}
