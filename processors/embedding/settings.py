"""Settings of the embedding consumers (env prefix `JOBTRAIL_EMBED_`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class EmbedderSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JOBTRAIL_EMBED_", frozen=True, extra="ignore")

    provider: Literal["torch", "openai"] = Field(
        default="torch", description="Where vectors come from"
    )
    model: str = Field(
        default="all-MiniLM-L6-v2",
        description="Model name: the label of requests and vectors; for torch a local path "
        "overrides the bundled all-MiniLM-L6-v2 (model_path)",
    )
    model_path: str | None = Field(
        default=None, description="torch: a local sentence-transformers model directory"
    )
    device: str | None = Field(
        default=None, description="torch: cuda, cpu, ...; unset: CUDA (half precision) if present"
    )
    batch_size: int = Field(default=64, ge=1, description="Texts per model forward pass")
    fetch_batches: int = Field(
        default=32,
        ge=1,
        description="Model batches consumed together: one provider call whose texts are sorted "
        "by length, so each forward pass pads its texts to a similar length",
    )
    batch_wait_s: float = Field(default=0.5, gt=0, description="Longest wait to fill a round")
    openai_base_url: str | None = Field(
        default=None, description="An OpenAI-compatible server; unset: the OpenAI API"
    )
    openai_api_key: SecretStr | None = Field(default=None, description="API key (secret)")
    openai_timeout_s: float = Field(default=30.0, gt=0, description="Per-request timeout")
    openai_max_retries: int = Field(
        default=5, ge=0, description="Retries of 429/5xx/timeouts, honouring Retry-After"
    )
    breaker_failures: int = Field(
        default=3, ge=1, description="Failed batches in a row that open the circuit breaker"
    )
    breaker_open_s: float = Field(
        default=2.0, gt=0, description="First pause while the provider is down (then doubles)"
    )
    breaker_max_open_s: float = Field(default=60.0, gt=0, description="Longest pause")
    session_timeout_ms: int = Field(
        default=10_000, ge=6000, description="How soon the group notices a crashed embedder"
    )
    max_poll_interval_ms: int = Field(
        default=300_000,
        ge=6000,
        description="Longest gap between polls before the group drops the member; provider "
        "calls and back-offs poll (partitions paused) meanwhile, so a slow call does not count",
    )
    keepalive_poll_s: float = Field(
        default=1.0, gt=0, description="How often the consumer polls while a provider call runs"
    )
    metrics_port: int = Field(default=8004, ge=0, description="Prometheus port (0: off)")
