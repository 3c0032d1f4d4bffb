"""Settings of the projection components (env prefix `JOBTRAIL_`)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class RedisSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JOBTRAIL_REDIS_", frozen=True, extra="ignore")

    url: str = Field(default="redis://127.0.0.1:6379/0", description="Redis URL")
    prefix: str = Field(default="jobtrail:", description="Key prefix of the read model")
    timeout_s: float = Field(default=5.0, gt=0, description="Socket timeout")


class ProjectorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JOBTRAIL_PROJECTOR_", frozen=True, extra="ignore")

    batch_size: int = Field(default=2000, ge=1, description="Records per applied batch")
    batch_wait_s: float = Field(default=0.2, gt=0, description="Longest wait to fill a batch")
    retry_max_s: float = Field(
        default=10.0, gt=0, description="Longest back-off while a store is down"
    )
    metrics_port: int = Field(default=0, ge=0, description="Prometheus port (0: off)")
    session_timeout_ms: int = Field(
        default=10_000, ge=6000, description="How soon the group notices a crashed projector"
    )


class CouchbaseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JOBTRAIL_COUCHBASE_", frozen=True, extra="ignore")

    connstr: str = Field(default="couchbase://127.0.0.1:11210", description="Connection string")
    username: str = Field(default="Administrator", description="User")
    password: SecretStr = Field(default=SecretStr("password"), description="Password")
    bucket: str = Field(default="default", description="Bucket of the read model")
    prefix: str = Field(default="jobtrail::", description="Document key prefix")
    timeout_s: float = Field(default=5.0, gt=0, description="Key-value operation timeout")
    concurrency: int = Field(default=16, ge=1, description="Concurrent document operations")


class AnalyticsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JOBTRAIL_ANALYTICS_", frozen=True, extra="ignore")

    max_level: int = Field(
        default=32,
        ge=1,
        description="Concurrency levels above this share one bucket (a change needs a rebuild)",
    )
