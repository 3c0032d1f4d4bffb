"""Grafana dashboards as code (grafana-foundation-sdk). Regenerate the JSON with
`make dashboards`; a unit test fails when the committed JSON and this code disagree."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row
from grafana_foundation_sdk.builders.prometheus import Dataquery as PrometheusQuery
from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder

OUTPUT = Path(__file__).parent / "dashboards" / "jobtrail.json"


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
    result: dict[str, Any] = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    return result


def render() -> str:
    return json.dumps(jobtrail_dashboard(), sort_keys=True, indent=2) + "\n"


if __name__ == "__main__":
    OUTPUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUTPUT}")
