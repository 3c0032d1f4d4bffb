"""One running pipeline for the end-to-end tests that look at the product as its users do."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.live_pipeline import LivePipeline, live_pipeline


@pytest.fixture(scope="package")
def running(
    kafka_bootstrap: str,
    redis_url: str,
    couchbase_connstr: str,
    prometheus_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LivePipeline]:
    with live_pipeline(kafka_bootstrap, redis_url, couchbase_connstr,
                       tmp_path_factory.mktemp("pipeline")) as pipeline:  # fmt: skip
        yield pipeline
