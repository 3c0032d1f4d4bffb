"""Grafana dashboards as code (grafana-foundation-sdk). Regenerate the JSON with
`make dashboards`; a unit test fails when the committed JSON and this code disagree. Grafana loads
every file in infra/grafana/dashboards (provisioning/dashboards/jobtrail.yml), so a new dashboard
only needs an entry in GENERATED."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders.bargauge import Panel as BarGauge
from grafana_foundation_sdk.builders.common import ReduceDataOptions
from grafana_foundation_sdk.builders.dashboard import Dashboard, Row, ThresholdsConfig
from grafana_foundation_sdk.builders.prometheus import Dataquery as PrometheusQuery
from grafana_foundation_sdk.builders.table import Panel as Table
from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import BarGaugeDisplayMode, VizOrientation
from grafana_foundation_sdk.models.dashboard import (
    DataTransformerConfig,
    DynamicConfigValue,
    Threshold,
    ThresholdsMode,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

DIRECTORY = Path(__file__).parent / "dashboards"
OUTPUT = DIRECTORY / "jobtrail.json"
JOBS_OUTPUT = DIRECTORY / "jobs.json"

# The Jobs dashboard's metrics come from the read model at scrape time (the API's /metrics), so a
# replay rebuilds them rather than doubling them; the queries below lean on that contract only.
FINISHED = "jobtrail_jobs_finished_total"
ATTEMPTS = "jobtrail_concurrency_attempts_total"
FAILURES = "jobtrail_concurrency_failures_total"
REF_IDS = "ABCDEFGH"


def _panel(title: str, unit: str, *queries: tuple[str, str]) -> Timeseries:
    panel = Timeseries().title(title).unit(unit).min(0)
    for expr, legend in queries:
        panel = panel.with_target(PrometheusQuery().expr(expr).legend_format(legend))
    return panel


def _rate(metric: str, by: str, window: str = "1m") -> str:
    return f"sum by ({by}) (rate({metric}[{window}]))"


def jobtrail_dashboard() -> dict[str, Any]:
    projection = "{{projection}}"
    builder = (
        Dashboard("jobtrail")
        .uid("jobtrail-overview")
        .tags(["jobtrail", "generated"])
        .refresh("10s")
        .time("now-30m", "now")
        .with_row(Row("Producers"))
        .with_panel(
            _panel(
                "Events sent",
                "ops",
                (_rate("jobtrail_producer_events_sent_total", "component"), "{{component}}"),
            )
        )
        .with_panel(
            _panel(
                "Delivery errors and in flight",
                "short",
                (_rate("jobtrail_producer_errors_total", "component", "5m"), "errors"),
                ("sum by (component) (jobtrail_producer_in_flight)", "in flight"),
            )
        )
        .with_row(Row("Stream processors"))
        .with_panel(
            _panel(
                "Records in / out by topic",
                "ops",
                (_rate("jobtrail_processor_events_in_total", "topic"), "in {{topic}}"),
                (_rate("jobtrail_processor_events_out_total", "topic"), "out {{topic}}"),
            )
        )
        .with_panel(
            _panel(
                "Dead letters by reason / late attempt edges",
                "ops",
                (_rate("jobtrail_processor_dead_letters_total", "reason", "5m"), "{{reason}}"),
                (
                    _rate("jobtrail_processor_late_attempt_edges_total", "handling", "5m"),
                    "late {{handling}}",
                ),
            )
        )
        .with_panel(
            _panel(
                "Fingerprints: new vs seen",
                "ops",
                (_rate("jobtrail_processor_fingerprints_total", "result"), "{{result}}"),
            )
        )
        .with_panel(
            _panel(
                "Lag and latency (p95)",
                "short",
                ("sum by (topic) (jobtrail_processor_consumer_lag)", "lag {{topic}}"),
                (
                    "histogram_quantile(0.95, "
                    + _rate("jobtrail_processor_latency_seconds_bucket", "le", "5m")
                    + ")",
                    "p95 latency (s)",
                ),
            )
        )
        .with_row(Row("Embedders"))
        .with_panel(
            _panel(
                "Texts embedded / cache hits",
                "ops",
                (_rate("jobtrail_embed_texts_total", "model"), "{{model}}"),
                (_rate("jobtrail_embed_cache_hits_total", "model"), "cache hits {{model}}"),
            )
        )
        .with_panel(
            _panel(
                "Provider latency (p95) and circuit",
                "s",
                (
                    "histogram_quantile(0.95, "
                    + _rate("jobtrail_embed_latency_seconds_bucket", "le, model", "5m")
                    + ")",
                    "p95 {{model}}",
                ),
                ("max by (model) (jobtrail_embed_circuit_open)", "circuit open {{model}}"),
            )
        )
        .with_panel(
            _panel(
                "Provider errors / rejected requests",
                "short",
                (_rate("jobtrail_embed_provider_errors_total", "model", "5m"), "errors {{model}}"),
                (_rate("jobtrail_embed_rejected_total", "reason", "5m"), "rejected {{reason}}"),
            )
        )
        .with_row(Row("Projections"))
        .with_panel(
            _panel(
                "Events applied / duplicates skipped",
                "ops",
                (_rate("jobtrail_projection_events_applied_total", "projection"), projection),
                (_rate("jobtrail_projection_duplicates_skipped_total", "projection"), "dup"),
            )
        )
        .with_panel(
            _panel("Lag", "short", ("max by (projection) (jobtrail_projection_lag)", projection))
        )
        .with_panel(
            _panel(
                "Batch apply latency (p95)",
                "s",
                (
                    "histogram_quantile(0.95, "
                    + _rate("jobtrail_projection_apply_seconds_bucket", "le, projection", "5m")
                    + ")",
                    projection,
                ),
            )
        )
        .with_panel(
            _panel(
                "Store errors / undecodable records",
                "short",
                (_rate("jobtrail_projection_store_errors_total", "projection", "5m"), "store"),
                (_rate("jobtrail_projection_undecodable_total", "projection", "5m"), "undecodable"),
            )
        )
    )
    return _built(builder)


def _targets(*queries: tuple[str, str], table: bool = False) -> list[PrometheusQuery]:
    """Targets named A, B, ... (a table's merge names its value columns after them). Table
    targets are instant: a table shows the latest figures, not a series per scrape."""
    targets = []
    for ref_id, (expr, legend) in zip(REF_IDS[: len(queries)], queries, strict=True):
        target = PrometheusQuery().expr(expr).ref_id(ref_id)
        if legend:
            target = target.legend_format(legend)
        if table:
            target = target.instant().format(PromQueryFormat.TABLE)
        targets.append(target)
    return targets


def _timeseries(title: str, unit: str, description: str, *queries: tuple[str, str]) -> Timeseries:
    panel = Timeseries().title(title).description(description).unit(unit).min(0)
    for target in _targets(*queries):
        panel = panel.with_target(target)
    return panel


def _ratio(failed: str, total: str, by: str) -> str:
    """failed / total per `by`, 0 (not missing) where the total has series but the failures have
    none: a label set that never failed exports no failure series, and a missing series would
    read as "no data" rather than as a failure rate of 0."""
    failures = f"sum by ({by}) ({failed})"
    totals = f"sum by ({by}) ({total})"
    return f"({failures} or 0 * {totals}) / {totals}"


def _merged_table(title: str, description: str, *columns: tuple[str, str, str]) -> Table:
    """One row per label set from (column name, unit, expr) columns: instant queries merged on
    their labels, each `Value #<refId>` renamed to its column, the timestamp dropped (every row
    has the same one)."""
    renames = {
        f"Value #{ref}": name
        for ref, (name, _, _) in zip(REF_IDS[: len(columns)], columns, strict=True)
    }
    panel = (
        Table()
        .title(title)
        .description(description)
        .with_transformation(DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(
            DataTransformerConfig(
                id_val="organize",
                options={"excludeByName": {"Time": True}, "renameByName": renames},
            )
        )
    )
    for target in _targets(*((expr, "") for _, _, expr in columns), table=True):
        panel = panel.with_target(target)
    for name, unit, _ in columns:
        panel = panel.override_by_name(name, [DynamicConfigValue("unit", unit)])
    return panel


def _failure_thresholds() -> ThresholdsConfig:
    return (
        ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(None, "green"), Threshold(0.1, "orange"), Threshold(0.25, "red")])
    )


def jobs_dashboard() -> dict[str, Any]:
    """Job lifecycle: outcomes, what runs now, retries, concurrency, errors, what is stuck."""
    job = "{{job_name}}"
    settled = f'{FINISHED}{{outcome=~"completed|failed"}}'
    failure_rate_10m = _ratio(
        f'rate({FINISHED}{{outcome="failed"}}[10m])', f"rate({settled}[10m])", "job_name"
    )
    builder = (
        Dashboard("Jobs")
        .uid("jobtrail-jobs")
        .tags(["jobtrail", "generated"])
        .refresh("10s")
        .time("now-1h", "now")
        .with_row(Row("Outcomes"))
        .with_panel(
            _timeseries(
                "Failure rate per job name (10m)",
                "percentunit",
                "failed / (completed + failed) of the jobs finished in the last 10 minutes; "
                "cancelled jobs count for neither. A gap: none finished in the window.",
                (failure_rate_10m, job),
            ).max(1)
        )
        .with_panel(
            BarGauge()
            .title("Failure rate per job name (all time)")
            .description("failed / (completed + failed) of every finished job")
            .unit("percentunit")
            .min(0)
            .max(1)
            .thresholds(_failure_thresholds())
            .orientation(VizOrientation.HORIZONTAL)
            .display_mode(BarGaugeDisplayMode.GRADIENT)
            .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
            .with_target(
                PrometheusQuery()
                .expr("max by (job_name) (jobtrail_job_failure_rate)")
                .legend_format(job)
                .ref_id("A")
                .instant()
            )
        )
        .with_panel(
            _timeseries(
                "Throughput (jobs finished per minute)",
                "opm",
                "Jobs finished per minute by job name and outcome",
                (_rate(FINISHED, "job_name, outcome") + " * 60", "{{job_name}} {{outcome}}"),
            )
        )
        .with_panel(
            _timeseries(
                "Retries per minute per job name",
                "opm",
                "Retried attempts of the jobs that finished, per minute",
                (_rate("jobtrail_job_retries_total", "job_name", "5m") + " * 60", job),
            )
        )
        .with_row(Row("Jobs now"))
        .with_panel(
            _timeseries(
                "Active jobs per job name",
                "short",
                "Jobs with an attempt running",
                ("sum by (job_name) (jobtrail_jobs_active)", job),
            )
        )
        .with_panel(
            _timeseries(
                "Jobs by state",
                "short",
                "Jobs in each lifecycle state, every job name together",
                ("sum by (state) (jobtrail_jobs)", "{{state}}"),
            )
        )
        .with_panel(
            _timeseries(
                "Stuck jobs per job name",
                "short",
                "Jobs queued, retrying or active for longer than their job name's threshold, "
                "and stalled ones (as `jobtrail gaps` lists them)",
                ("sum by (job_name) (jobtrail_jobs_stuck)", job),
            )
        )
        .with_panel(
            _merged_table(
                "Failure rate by concurrency level",
                "Of the attempts that ran while `level` attempts of the same job name ran at "
                "once: the share that failed (failed or stalled), and how many there were (a "
                "rate over few attempts says little)",
                ("failure rate", "percentunit", _ratio(FAILURES, ATTEMPTS, "job_name, level")),
                ("attempts", "short", f"sum by (job_name, level) ({ATTEMPTS})"),
            )
        )
        .with_row(Row("Errors"))
        .with_panel(
            _timeseries(
                "Error categories over time",
                "short",
                "New error occurrences per category in each 5 minutes (the occurrence totals "
                "only grow, so their increase is what arrived)",
                ("sum by (category) (increase(jobtrail_category_occurrences[5m]))", "{{category}}"),
            )
        )
        .with_panel(
            _merged_table(
                "Error categories: current totals",
                "Occurrences and distinct errors (fingerprints) per category",
                ("occurrences", "short", "sum by (category) (jobtrail_category_occurrences)"),
                ("distinct errors", "short", "sum by (category) (jobtrail_category_fingerprints)"),
            )
        )
        .with_row(Row("Pipeline"))
        .with_panel(
            _timeseries(
                "Dead letters per topic",
                "short",
                "Dead letters held by each dead-letter topic",
                ("sum by (topic) (jobtrail_dead_letters)", "{{topic}}"),
            )
        )
        .with_panel(
            _timeseries(
                "Consumer lag per group",
                "short",
                "Records not yet consumed, per consumer group",
                ("sum by (group) (jobtrail_consumer_lag)", "{{group}}"),
            )
        )
    )
    return _built(builder)


def _built(builder: Dashboard) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    return result


# Every generated dashboard, by the file it is written to.
GENERATED: dict[Path, Callable[[], dict[str, Any]]] = {
    OUTPUT: jobtrail_dashboard,
    JOBS_OUTPUT: jobs_dashboard,
}


def render(dashboard: dict[str, Any]) -> str:
    return json.dumps(dashboard, sort_keys=True, indent=2) + "\n"


def dashboard_files() -> list[Path]:
    """The generated dashboard JSON files, for tests that check what Grafana will load."""
    return list(GENERATED)


def panel_queries(dashboard_json: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL expr) of every target of every panel, rows' nested panels included,
    an empty expr kept as "" so that a test can fail on it rather than skip it."""
    queries: list[tuple[str, str]] = []
    for panel in dashboard_json.get("panels", []):
        for nested in [panel, *panel.get("panels", [])]:
            queries.extend(
                (nested.get("title", ""), target.get("expr", ""))
                for target in nested.get("targets") or []
            )
    return queries


def main() -> None:
    for path, build in GENERATED.items():
        path.write_text(render(build()), encoding="utf-8")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
