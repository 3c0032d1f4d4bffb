"""`jobtrail serve`: the HTTP API over the query layer (FastAPI on uvicorn).

JSON everywhere, OpenAPI at /openapi.json (docs at /docs). A missing job name or job is a 404 with
the reason; a bad parameter is FastAPI's 422. With JOBTRAIL_API_TOKEN set, every route except
/api/health wants `Authorization: Bearer <token>` (401 otherwise). /api/health answers 200 only
when every dependency answers and every supervised component runs, else 503 with the reasons
(jobtrail/health.py).

No `from __future__ import annotations` here: FastAPI reads the routes' annotations at run time,
and the auth dependency is local to `create_api`, where a string annotation could not find it.
"""

import secrets
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from jobtrail import __version__
from jobtrail.analytics_queries import (
    AnalyticsQueries,
    ConcurrencyAnswer,
    ErrorDetail,
    ErrorsPage,
    GapsAnswer,
    NotInModelError,
    QueueAnswer,
)
from jobtrail.categories.service import (
    CategoriesAnswer,
    CategoryDetail,
    CategoryService,
    UnknownCategoryError,
)
from jobtrail.health import HEALTH_MAX_AGE_S, Health, check_health
from jobtrail.job_history import JobHistory
from jobtrail.job_metrics import JobMetricsCollector
from jobtrail.queries import (
    DeadLetterCount,
    JobDetail,
    JobNameDetail,
    JobNameSummary,
    JobsPage,
    NotConfiguredError,
    NotFoundError,
    Queries,
    RetryCurve,
)
from jobtrail.refresh import RefreshAhead
from jobtrail.web.pages import Sources, static_files, web_router
from projections.model import JobState
from projections.ports import StoreUnavailableError

DEAD_LETTERS_MAX_AGE_S = 5.0  # reading every DLQ to its end takes a round trip per partition


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JOBTRAIL_API_", frozen=True, extra="ignore")

    host: str = Field(default="127.0.0.1", description="Address the API listens on")
    port: int = Field(default=8080, ge=0, le=65535, description="Port of the API")
    workers: int = Field(default=1, ge=1, description="Server processes (each its own connections)")
    token: SecretStr | None = Field(
        default=None, description="When set, every route but /api/health wants this bearer token"
    )

    @field_validator("token", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value


def health_response(answer: Health) -> JSONResponse:
    """200 when healthy, else 503, with the answer as JSON (times as ISO 8601 strings)."""
    return JSONResponse(answer.model_dump(mode="json"), status_code=200 if answer.healthy else 503)


def create_api(
    queries: Queries,
    analytics: AnalyticsQueries,
    settings: ApiSettings,
    categories: CategoryService | None = None,
) -> FastAPI:
    app = FastAPI(title="jobtrail", version=__version__,
                  description="Background-job analytics from the jobtrail read models")  # fmt: skip
    bearer = HTTPBearer(auto_error=False)
    # Answers that ask the broker: served from memory, refreshed in the background.
    health_answers = RefreshAhead(lambda: check_health(queries), HEALTH_MAX_AGE_S)
    letters = RefreshAhead(queries.dead_letters, DEAD_LETTERS_MAX_AGE_S)

    def authorized(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        if settings.token is None:
            return
        given = credentials.credentials if credentials else ""
        if not secrets.compare_digest(given, settings.token.get_secret_value()):
            raise HTTPException(401, "a bearer token is required (JOBTRAIL_API_TOKEN)",
                                headers={"WWW-Authenticate": "Bearer"})  # fmt: skip

    @app.exception_handler(NotFoundError)
    @app.exception_handler(NotInModelError)
    @app.exception_handler(UnknownCategoryError)
    def not_found(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(NotConfiguredError)
    def not_configured(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=501)

    @app.exception_handler(StoreUnavailableError)
    def unavailable(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"a read model did not answer: {exc}"}, status_code=503)

    @app.get("/api/health", response_model=Health, responses={503: {"model": Health}})
    def health() -> JSONResponse:
        return health_response(health_answers.get())

    # Read-model figures for Prometheus (no token: a scraper sends none; they name no job).
    registry = CollectorRegistry(auto_describe=True)
    registry.register(JobMetricsCollector(queries, analytics, letters.get, health_answers.get))
    if categories is not None:
        from jobtrail.categories.metrics import CategoryCollector

        registry.register(CategoryCollector(categories))

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    api = APIRouter(prefix="/api", dependencies=[Depends(authorized)])

    def category_service() -> CategoryService:
        if categories is None:
            raise NotConfiguredError("categories are not served by this API")
        return categories

    @api.get("/job-names")
    def job_names() -> list[JobNameSummary]:
        return queries.job_names()

    @api.get("/job-names/{name}")
    def job_name(name: str) -> JobNameDetail:
        return queries.job_name(name)

    @api.get("/job-names/{name}/jobs")
    def jobs(
        name: str,
        page: Annotated[int, Query(ge=0, description="from 0, newest first")] = 0,
        size: Annotated[int, Query(ge=1, le=500)] = 50,
        state: Annotated[JobState | None, Query(description="only jobs now in it")] = None,
    ) -> JobsPage:
        return queries.jobs(name, page, size, None if state is None else state.value)

    @api.get("/job-names/{name}/retries")
    def retries(
        name: str,
        threshold: Annotated[float, Query(gt=0, lt=1)] = 0.05,
        min_jobs: Annotated[int, Query(ge=1)] = 30,
    ) -> RetryCurve:
        return queries.retries(name, threshold, min_jobs)

    @api.get("/job-names/{name}/concurrency")
    def name_concurrency(name: str) -> ConcurrencyAnswer:
        return analytics.concurrency(job_name=name)

    @api.get("/workers/{worker}/concurrency")
    def worker_concurrency(worker: str) -> ConcurrencyAnswer:
        return analytics.concurrency(worker=worker)

    @api.get("/errors")
    def errors(
        page: Annotated[int, Query(ge=0, description="from 0, most frequent first")] = 0,
        size: Annotated[int, Query(ge=1, le=500)] = 50,
        job_name: Annotated[str | None, Query(description="only this job name's errors")] = None,
        since: Annotated[datetime | None, Query(description="seen at or after (ISO 8601)")] = None,
    ) -> ErrorsPage:
        return analytics.errors(page, size, job_name=job_name, since=since)

    @api.get("/errors/{fingerprint}")
    def error(
        fingerprint: str,
        vectors: Annotated[bool, Query(description="include each model's vector")] = False,
    ) -> ErrorDetail:
        return analytics.error(fingerprint, vectors=vectors)

    @api.get("/gaps")
    def gaps(limit: Annotated[int, Query(ge=1, le=10_000)] = 500) -> GapsAnswer:
        return analytics.gaps(limit)

    @api.get("/queues")
    def queues() -> list[QueueAnswer]:
        return analytics.queues()

    @api.get("/dead-letters")
    def dead_letters() -> list[DeadLetterCount]:
        return letters.get()

    @api.get("/jobs/{job_id}")
    def job(job_id: str) -> JobDetail:
        return queries.job_detail(job_id)

    @api.get("/jobs/{job_id}/history")
    def history(job_id: str) -> JobHistory:
        return queries.history(job_id)

    @api.get("/categories")
    def category_counts(
        job_name: Annotated[str | None, Query(description="only this job name's errors")] = None,
        since: Annotated[
            datetime | None, Query(description="occurrences from this hour on (last 7 days)")
        ] = None,
    ) -> CategoriesAnswer:
        if job_name is not None and since is not None:
            raise HTTPException(422, "job_name and since cannot be combined: per-hour counts "
                                     "are kept per error, not per job name")  # fmt: skip
        return category_service().categories(job_name=job_name, since=since)

    @api.get("/categories/{name}")
    def category(
        name: str, top: Annotated[int, Query(ge=1, le=20, description="top errors")] = 10
    ) -> CategoryDetail:
        return category_service().category(name, top=top)

    app.include_router(api)
    sources = Sources(queries, analytics, categories, letters.get, health_answers.get)
    app.include_router(web_router(sources, None if settings.token is None
                                  else settings.token.get_secret_value()))  # fmt: skip
    app.mount("/static", static_files(), name="static")
    return app
