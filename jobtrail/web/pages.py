"""The pages of the web UI (`jobtrail serve` at /): server-rendered HTML over the query layer, with
charts drawn in the browser by Chart.js (vendored in static/vendor with its licence; no build
step). Every page re-fetches itself every few seconds while visible (static/app.js swaps in the
new <main>), so numbers move while the pipeline runs.

With JOBTRAIL_API_TOKEN set, a page wants the token once: /login keeps it in an HttpOnly cookie
that every page request then carries.
"""

from __future__ import annotations

import secrets
import urllib.parse
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from jobtrail.analytics_queries import AnalyticsQueries, NotInModelError
from jobtrail.categories.service import CategoryService
from jobtrail.errors import JobtrailError
from jobtrail.health import Health
from jobtrail.queries import DeadLetterCount, NotConfiguredError, NotFoundError, Queries
from jobtrail.times import utc_from_ms
from jobtrail.web import charts
from projections.model import JobState

HERE = Path(__file__).parent
COOKIE = "jobtrail_token"
REFRESH_S = 5
PAGE_SIZE = 25
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["pct"] = lambda v: "-" if v is None else f"{100 * v:.1f}%"
templates.env.filters["when"] = lambda v: "-" if v is None else v.strftime("%Y-%m-%d %H:%M:%S")
templates.env.filters["short"] = lambda v: v[:12]


def same(given: str, token: str) -> bool:
    """Constant-time comparison; bytes, so any characters a client sends compare (as str,
    compare_digest raises on non-ASCII)."""
    return secrets.compare_digest(given.encode(), token.encode())


def web_router(sources: Sources, token: str | None) -> APIRouter:
    return WebPages(sources, token).router()


def static_files() -> StaticFiles:
    return StaticFiles(directory=HERE / "static")


class Sources:
    """What the pages read: the query layer, and the API's in-memory answers."""

    def __init__(
        self,
        queries: Queries,
        analytics: AnalyticsQueries,
        categories: CategoryService | None,
        dead_letters: Callable[[], list[DeadLetterCount]],
        health: Callable[[], Health],
    ) -> None:
        self.queries = queries
        self.analytics = analytics
        self.categories = categories
        self.dead_letters = dead_letters
        self.health = health

    def categories_of(self, job_name: str) -> list[tuple[str, int]]:
        """(category, occurrences) of a job name's errors, most first; empty without answer."""
        if self.categories is None:
            return []
        try:
            answer = self.categories.categories(job_name=job_name)
        except JobtrailError:
            return []
        counts = [(c.name, c.occurrences) for c in answer.categories if c.occurrences]
        return sorted(counts, key=lambda item: -item[1])

    def labels(self) -> dict[str, str]:
        """fingerprint -> category name; empty when categories cannot answer."""
        if self.categories is None:
            return {}
        try:
            return {fp: name for fp, (name, _) in self.categories.view().labels.items()}
        except JobtrailError:
            return {}


class WebPages:
    """Each page a method over `sources`; `router()` mounts them."""

    def __init__(self, sources: Sources, token: str | None) -> None:
        self.sources = sources
        self.token = token

    def router(self) -> APIRouter:
        router = APIRouter(include_in_schema=False)
        router.add_api_route("/login", self.login_form, methods=["GET"],
                             response_class=HTMLResponse)  # fmt: skip
        router.add_api_route("/login", self.login, methods=["POST"])
        # `:path`: a job name or id may hold a slash ("reports/daily"); nothing nests below.
        for path, handler in (
            ("/", self.overview),
            ("/job-names/{name:path}", self.job_name),
            ("/jobs/{job_id:path}", self.job),
            ("/errors", self.errors),
            ("/categories", self.categories),
            ("/categories/{name:path}", self.category),
            ("/stuck", self.stuck),
            ("/dead-letters", self.dead_letters),
            ("/health", self.health),
        ):
            router.add_api_route(path, handler, methods=["GET"], response_class=HTMLResponse,
                                 dependencies=[Depends(self.signed_in)])  # fmt: skip
        return router

    def signed_in(self, request: Request) -> None:
        """Runs before a page reads anything: without the token, off to /login."""
        if self.token is not None and not same(request.cookies.get(COOKIE, ""), self.token):
            target = urllib.parse.quote(request.url.path)
            raise HTTPException(303, "sign in first", headers={"Location": f"/login?next={target}"})

    def page(self, request: Request, template: str, title: str, **context: Any) -> Response:
        return templates.TemplateResponse(
            request, template, {"title": title, "refresh_s": REFRESH_S, **context}
        )

    def login_form(self, request: Request, next: str = "/", failed: bool = False) -> Response:
        return templates.TemplateResponse(request, "login.html", {
            "title": "Sign in", "next": next, "failed": failed, "refresh_s": 0})  # fmt: skip

    async def login(self, request: Request) -> Response:
        form = urllib.parse.parse_qs((await request.body()).decode(errors="replace"))
        given = form.get("token", [""])[0]
        target = form.get("next", ["/"])[0]
        if not target.startswith("/") or target.startswith("//"):
            target = "/"  # only paths of this site: no open redirect
        if self.token is None or not same(given, self.token):
            return RedirectResponse(f"/login?failed=true&next={urllib.parse.quote(target)}",
                                    status_code=303)  # fmt: skip
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, given, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")  # fmt: skip
        return response

    def overview(self, request: Request) -> Response:
        names = self.sources.queries.job_names()
        minutes = _or_empty(self.sources.analytics.throughput)
        totals = {state.value: sum(n.states.get(state.value, 0) for n in names)
                  for state in JobState}  # fmt: skip
        return self.page(request, "overview.html", "Overview", names=names, totals=totals,
                    throughput=charts.throughput_chart(minutes),
                    states=[s.value for s in JobState])  # fmt: skip

    def job_name(
        self, request: Request, name: str, state: str | None = None, page_no: int = 0
    ) -> Response:
        queries, analytics = self.sources.queries, self.sources.analytics
        detail = queries.job_name(name)
        retries = queries.retries(name)
        try:
            concurrency = charts.concurrency_chart(analytics.concurrency(job_name=name))
        except NotInModelError:
            concurrency = None
        errors = analytics.errors(0, 10, job_name=name)
        labels = self.sources.labels()
        by_category = self.sources.categories_of(name)
        chosen = state if state in {s.value for s in JobState} else None
        jobs = queries.jobs(name, max(0, page_no), PAGE_SIZE, chosen)
        return self.page(request, "job_name.html", name, detail=detail, retries=retries,
                    retry_chart=charts.retry_chart(retries), concurrency_chart=concurrency,
                    throughput=charts.throughput_chart(_or_empty(
                        lambda: analytics.throughput(name))),
                    errors=errors, labels=labels, by_category=by_category,
                    jobs=jobs, state=chosen, states=[s.value for s in JobState])  # fmt: skip

    def job(self, request: Request, job_id: str) -> Response:
        detail = self.sources.queries.job_detail(job_id)
        errors: dict[str, str] = {}
        history = detail.history
        for attempt in history.attempts if history else []:
            fp = attempt.error_fingerprint
            if fp and fp not in errors:
                try:
                    errors[fp] = self.sources.analytics.error(fp).template.split("\n", 1)[0]
                except NotInModelError:
                    errors[fp] = fp[:12]
        timeline = charts.timeline_chart(history) if history else None
        return self.page(request, "job.html", job_id, job=detail, history=history, errors=errors,
                    labels=self.sources.labels(), timeline=timeline)  # fmt: skip

    def errors(self, request: Request, page_no: int = 0) -> Response:
        answer = self.sources.analytics.errors(max(0, page_no), PAGE_SIZE)
        labels = self.sources.labels()
        return self.page(request, "errors.html", "Errors", errors=answer, labels=labels,
                    hourly=_category_hours(self.sources))  # fmt: skip

    def categories(self, request: Request) -> Response:
        if self.sources.categories is None:
            raise NotConfiguredError("categories are not served by this API")
        answer = self.sources.categories.categories()
        shares = charts.share_chart([(c.name, c.occurrences) for c in answer.categories],
                                    "occurrences")  # fmt: skip
        return self.page(request, "categories.html", "Categories", answer=answer, shares=shares,
                    hourly=_category_hours(self.sources))  # fmt: skip

    def category(self, request: Request, name: str) -> Response:
        if self.sources.categories is None:
            raise NotConfiguredError("categories are not served by this API")
        detail = self.sources.categories.category(name, top=20)
        hourly = charts.hourly_chart({name: {h.hour: h.occurrences for h in detail.hours}},
                                     "occurrences per hour")  # fmt: skip
        return self.page(request, "category.html", name, detail=detail, hourly=hourly)

    def stuck(self, request: Request) -> Response:
        return self.page(request, "stuck.html", "Stuck jobs", gaps=self.sources.analytics.gaps(500))

    def dead_letters(self, request: Request) -> Response:
        return self.page(
            request, "dead_letters.html", "Dead letters", letters=self.sources.dead_letters()
        )

    def health(self, request: Request) -> Response:
        return self.page(request, "health.html", "Health", health=self.sources.health())


def _category_hours(sources: Sources) -> dict[str, Any] | None:
    if sources.categories is None:
        return None
    try:
        view = sources.categories.view()
    except JobtrailError:
        return None
    series = {name: {utc_from_ms(h): n for h, n in totals.hours.items()}
              for name, totals in view.totals.items() if totals.hours}  # fmt: skip
    return charts.hourly_chart(series, "occurrences per hour")


def _or_empty(compute: Callable[[], list[tuple[datetime, int]]]) -> list[tuple[datetime, int]]:
    try:
        return compute()
    except (NotFoundError, NotInModelError):
        return []
