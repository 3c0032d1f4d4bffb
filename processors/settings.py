"""Settings of the stream processors (env prefix `JOBTRAIL_PROCESSORS_`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from processors.concurrency import DEFAULT_ATTEMPT_EXPIRY_MS


class ProcessorSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="JOBTRAIL_PROCESSORS_", frozen=True, extra="ignore"
    )

    embedding_model: str = Field(
        default="all-MiniLM-L6-v2",
        description="Model the vectorize requests are for; a new one re-requests every error",
    )
    metrics_port: int = Field(default=8001, ge=0, description="Prometheus port (0: off)")
    grace_ms: int = Field(
        default=5_000,
        ge=0,
        description="How far behind its partition's latest event time an event may arrive and "
        "still be counted exactly in attempt concurrency",
    )
    idle_after_s: float = Field(
        default=5.0,
        gt=0,
        description="A caught-up partition with no events for this long stops holding back "
        "attempt outcomes",
    )
    horizon_ms: int = Field(
        default=600_000,
        gt=0,
        description="Event time for which ended attempts are remembered (redeliveries); "
        "older late edges are dropped",
    )
    attempt_expiry_ms: int = Field(
        default=DEFAULT_ATTEMPT_EXPIRY_MS,
        gt=0,
        description="Event time after its start for which an attempt counts as running at "
        "most: one whose end was lost stops counting then (and is counted in "
        "jobtrail_processor_expired_attempts_total)",
    )
    watermark_interval_s: float = Field(
        default=0.5, gt=0, description="How often partitions report their event-time progress"
    )
    processing_guarantee: Literal["at_least_once", "exactly_once"] = Field(
        default="at_least_once",
        description="at_least_once: outputs never lost, some may come twice after a crash; "
        "exactly_once: each output commits in the Kafka transaction of its source partition, "
        "once for readers of committed records (slower)",
    )
    store: str = Field(
        default="memory://", description="Faust table store (tables recover from changelogs)"
    )
    data_dir: str = Field(default=".faust", description="Faust's working directory")
    idle_stop_s: float = Field(
        default=0.0,
        ge=0,
        description="Stop once caught up and idle this long (0: run forever; for scripts)",
    )
    dedup_window_s: float = Field(
        default=7 * 86_400.0,
        gt=0,
        description="Event time for which a job's event ids are remembered after its last event: "
        "a re-sent event_id within it counts once",
    )
    dedup_max_ids: int = Field(
        default=64, ge=1, description="Event ids remembered per job (the latest ones)"
    )
    max_message_bytes: int = Field(
        default=1_000_000,
        ge=4096,
        description="Largest record the processors produce (librdkafka message.max.bytes); a "
        "larger dead letter goes as a truncated copy. At most the broker's and the DLQ topic's "
        "limit (1,048,588 by default)",
    )
    batch_size: int = Field(
        default=2000, ge=1, description="Most records a stage takes from its stream at once"
    )
    batch_within_s: float = Field(
        default=0.05, gt=0, description="How long a stage waits to fill a batch before it goes"
    )
    standby_replicas: int = Field(
        default=0, ge=0, description="Faust standby copies of each table on other workers"
    )
    log_level: Literal["crit", "error", "warn", "info", "debug"] = "warn"
