"""Error categories end to end, against the real broker, Redis, Prometheus and the bundled model.

The demo's events go to job-events and each distinct error's vector, embedded by the torch
provider from its template exactly as the embedding consumers embed it, to error-vectors (one
error left without a vector: the embedder is behind on it). The analytics projection folds them
into Redis; `jobtrail serve` then answers /api/categories, /api/categories/{name} and /metrics,
and Prometheus scrapes the per-category gauges. Every count must equal a recomputation from the
distinct events: each error's category (the classifier on its vector and words), its occurrences
summed. A changed categories file must relabel every error without a single error embedded again.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from confluent_kafka import Producer

from jobtrail.categories.categorize import build_classifier
from jobtrail.categories.classifier import CategoryClassifier, label_texts
from jobtrail.categories.definitions import NOT_EMBEDDED, UNCATEGORIZED, load_categories
from jobtrail.categories.lexicon import evidence
from jobtrail.categories.service import CategoryService
from jobtrail.categories.settings import CategorySettings
from processors.embedding.ports import Embedding
from processors.embedding.texts import EmbedText, text_of_template
from processors.embedding.torch_provider import TorchProvider
from processors.fingerprint import fingerprint
from projections.analytics.model import HOUR_MS
from projections.analytics.redis_store import AnalyticsRedisStore
from projections.projector import Projector
from projections.settings import ProjectorSettings, RedisSettings
from projections.sources import analytics_source
from schemas.derived import ErrorVector, encode_error_vector
from schemas.job_event import JobEvent, JobEventType, millis
from streams.demo.workload import Workload, WorkloadConfig
from streams.producer import JobEventProducer
from streams.settings import KafkaSettings
from tests.conftest import catalog_of, unique_prefix
from tests.e2e.test_demo_pipeline import prometheus_value
from tests.integration.stores import delete_redis_prefix
from tests.integration.test_api import get, serve

MODEL = "all-MiniLM-L6-v2"
EVENTS = list(Workload(WorkloadConfig(jobs=1500), seed=31).events())
API_PORT = 8080  # scraped by infra/prometheus/prometheus.yml
# The errors the read model counts: failed attempts' (a retried attempt's error included).
FAILED = [e for e in EVENTS if e.type is JobEventType.FAILED and e.error is not None]


class CountingProvider:
    """The real torch provider, remembering every text it was asked to embed."""

    def __init__(self, provider: TorchProvider) -> None:
        self.provider = provider
        self.texts: list[str] = []

    @property
    def model(self) -> str:
        return self.provider.model

    @property
    def max_chars(self) -> int:
        return self.provider.max_chars

    def embed(self, texts: Sequence[str]) -> Sequence[Embedding]:
        self.texts += texts
        return self.provider.embed(texts)


@dataclass
class Recomputed:
    """Per error, from the distinct events: occurrences, per job name, per hour, and its words
    (template and the earliest occurrence's message, as the read model samples it)."""

    count: Counter[str]
    by_name: dict[str, Counter[str]]
    by_hour: dict[str, Counter[int]]
    words: dict[str, frozenset[str]]
    templates: dict[str, str]


def recompute(events: list[JobEvent]) -> Recomputed:
    distinct = {e.event_id: e for e in events if e.type is JobEventType.FAILED and e.error}
    count: Counter[str] = Counter()
    by_name: dict[str, Counter[str]] = {}
    by_hour: dict[str, Counter[int]] = {}
    earliest: dict[str, tuple[int, str, str]] = {}
    templates: dict[str, str] = {}
    for event in distinct.values():
        assert event.error is not None
        print_ = fingerprint(event.error)
        fp, at = print_.sha256, millis(event.occurred_at)
        templates[fp] = print_.template
        count[fp] += 1
        by_name.setdefault(fp, Counter())[event.job_name] += 1
        by_hour.setdefault(fp, Counter())[at - at % HOUR_MS] += 1
        earliest[fp] = min(earliest.get(fp, (at, event.job_id, "")),
                           (at, event.job_id, event.error.message[:1000]))  # fmt: skip
    words = {fp: evidence(templates[fp], earliest[fp][2]) for fp in count}
    return Recomputed(count, by_name, by_hour, words, templates)


@dataclass
class Setup:
    store: AnalyticsRedisStore
    provider: CountingProvider
    vectors: dict[str, np.ndarray]
    recomputed: Recomputed
    missing: str  # the error left without a vector
    env: dict[str, str]
    tmp: Path


@pytest.fixture(scope="module")
def setup(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Setup]:
    from streams.admin import TopicAdmin

    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_prefix("."),
                          connect_timeout_s=15)  # fmt: skip
    admin = TopicAdmin(kafka)
    admin.create(catalog_of(kafka).all())
    prefix = unique_prefix(":")
    store = AnalyticsRedisStore(RedisSettings(url=redis_url, prefix=prefix))
    store.setup()
    provider = CountingProvider(TorchProvider(MODEL).start())
    recomputed = recompute(EVENTS)
    prints = sorted(recomputed.count)
    missing = prints[0]
    texts = {}
    for fp in prints[1:]:
        text = text_of_template(recomputed.templates[fp], provider.max_chars)
        assert isinstance(text, EmbedText)
        texts[fp] = text.text
    embedded = provider.provider.embed(list(texts.values()))
    vectors = {fp: np.asarray(v, dtype=np.float32) for fp, v in zip(texts, embedded, strict=True)}
    try:
        with JobEventProducer(kafka) as producer:
            for event in EVENTS:
                producer.send(event)
        raw = Producer({"bootstrap.servers": kafka.bootstrap_servers})
        for fp, vector in vectors.items():
            value = encode_error_vector(ErrorVector(fp, MODEL, tuple(float(x) for x in vector)))
            raw.produce(catalog_of(kafka).error_vectors.name, key=f"{fp}:{MODEL}".encode(),
                        value=value)  # fmt: skip
        assert raw.flush(30) == 0
        projector = Projector(store, kafka, ProjectorSettings(batch_size=500),
                              source=analytics_source(kafka)).start()  # fmt: skip
        try:
            projector.run(idle_stop_s=5)
        finally:
            projector.close()
        env = {"JOBTRAIL_REDIS_URL": redis_url, "JOBTRAIL_REDIS_PREFIX": prefix,
               "JOBTRAIL_BOOTSTRAP_SERVERS": kafka_bootstrap,
               "JOBTRAIL_CATEGORIES_REFRESH_S": "0.5"}  # fmt: skip
        yield Setup(store, provider, vectors, recomputed, missing, env,
                    tmp_path_factory.mktemp("categories"))  # fmt: skip
    finally:
        delete_redis_prefix(redis_url, prefix)
        admin.delete(n for n in admin.metadata().topics if n.startswith(kafka.topic_prefix))


def expected_labels(setup: Setup, classifier: CategoryClassifier) -> dict[str, str]:
    """Each error's category: the classifier on its vector and words; not_embedded without one."""
    prints = sorted(setup.vectors)
    labels = classifier.classify(np.stack([setup.vectors[fp] for fp in prints]),
                                 [setup.recomputed.words[fp] for fp in prints])  # fmt: skip
    named = {fp: classifier.name_of(int(i)) or UNCATEGORIZED
             for fp, i in zip(prints, labels.index, strict=True)}  # fmt: skip
    return {**named, setup.missing: NOT_EMBEDDED}


def expected_counts(setup: Setup, labels: dict[str, str], job_name: str | None = None,
                    since_hour: int | None = None) -> dict[str, tuple[int, int]]:  # fmt: skip
    sums: dict[str, list[int]] = {}
    for fp, category in labels.items():
        if job_name is not None:
            n = setup.recomputed.by_name[fp][job_name]
        elif since_hour is not None:
            n = sum(c for h, c in setup.recomputed.by_hour[fp].items() if h >= since_hour)
        else:
            n = setup.recomputed.count[fp]
        if n:
            entry = sums.setdefault(category, [0, 0])
            entry[0] += n
            entry[1] += 1
    return {name: (n, k) for name, (n, k) in sums.items()}


def answered(categories: list[dict[str, object]]) -> dict[str, tuple[int, int]]:
    return {str(c["name"]): (int(c["occurrences"]), int(c["fingerprints"]))  # type: ignore[call-overload]
            for c in categories if c["occurrences"]}  # fmt: skip


def write_file(path: Path, entries: list[tuple[str, str, list[str]]]) -> Path:
    doc = {"categories": [{"name": n, "description": d, "examples": e} for n, d, e in entries]}
    path.write_text(json.dumps(doc))  # JSON is YAML
    return path


def starter_entries(suffix: str) -> list[tuple[str, str, list[str]]]:
    return [(f"{c.name}{suffix}", c.description, list(c.examples))
            for c in load_categories().categories]  # fmt: skip


def classifier_for(path: Path, provider: CountingProvider) -> CategoryClassifier:
    return build_classifier(load_categories(path), provider.provider,
                            CategorySettings().thresholds())  # fmt: skip


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_api_counts_equal_the_recomputation_from_the_events(
    setup: Setup, prometheus_url: str
) -> None:
    suffix = f" [{unique_prefix('')}]"  # this run's series in the shared Prometheus
    path = write_file(setup.tmp / "api.yaml", starter_entries(suffix))
    labels = expected_labels(setup, classifier_for(path, setup.provider))
    assert len(set(labels.values()) - {NOT_EMBEDDED, UNCATEGORIZED}) >= 3, labels
    assert port_is_free(API_PORT), f"port {API_PORT} is busy: stop `make up` (make down) first"
    process, url = serve({**setup.env, "JOBTRAIL_CATEGORIES_FILE": str(path)}, port=API_PORT)
    try:
        status, answer = get(url + "/api/categories", token=None, timeout=120)  # a model load
        assert status == 200, answer
        assert answered(answer["categories"]) == expected_counts(setup, labels)
        assert answer["total"] == len({e.event_id for e in FAILED})
        assert [c["name"] for c in answer["categories"]] == [
            *(n for n, _, _ in starter_entries(suffix)),
            UNCATEGORIZED,
            NOT_EMBEDDED,
        ]
        for job_name in sorted({e.job_name for e in FAILED}):
            status, by_name = get(url + "/api/categories?" + urllib.parse.urlencode(
                {"job_name": job_name}), token=None)  # fmt: skip
            assert status == 200
            assert answered(by_name["categories"]) == expected_counts(setup, labels, job_name)
        hours = sorted({h for c in setup.recomputed.by_hour.values() for h in c})
        since = hours[len(hours) // 2]
        since_iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since / 1000))
        status, recent = get(url + "/api/categories?since=" + urllib.parse.quote(since_iso),
                             token=None)  # fmt: skip
        assert status == 200
        assert answered(recent["categories"]) == expected_counts(setup, labels, since_hour=since)
        top_category = max(answered(answer["categories"]).items(), key=lambda kv: kv[1][0])[0]
        status, detail = get(url + "/api/categories/" + urllib.parse.quote(top_category),
                             token=None)  # fmt: skip
        assert status == 200
        mine = sorted(((setup.recomputed.count[fp], fp) for fp, c in labels.items()
                       if c == top_category), key=lambda x: (-x[0], x[1]))  # fmt: skip
        assert [(t["occurrences"], t["fingerprint"]) for t in detail["top_errors"]] == mine[:10]
        assert sum(h["occurrences"] for h in detail["hours"]) == detail["occurrences"]
        assert get(url + "/api/categories/no-such-category", token=None)[0] == 404
        assert get(url + "/api/categories?job_name=x&since=2026-01-01T00:00:00Z",
                   token=None)[0] == 422  # fmt: skip
        with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
            metrics = response.read().decode()
        expected = expected_counts(setup, labels)
        for name, (occurrences, _) in expected.items():
            line = f'jobtrail_category_occurrences{{category="{name}"}} {float(occurrences)}'
            assert line in metrics, (line, metrics[:2000])
        # Prometheus scrapes the API (infra/prometheus/prometheus.yml): the same figures.
        name, (occurrences, _) = next((n, v) for n, v in expected.items() if suffix in n)
        query = f'jobtrail_category_occurrences{{category="{name}"}}'
        deadline, seen = time.monotonic() + 40, None
        while time.monotonic() < deadline and seen != occurrences:
            seen = prometheus_value(prometheus_url, query)
            time.sleep(1)
        assert seen == occurrences, f"Prometheus has {seen} for {query}, expected {occurrences}"
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def test_a_changed_file_relabels_without_embedding_any_error(setup: Setup) -> None:
    path = write_file(setup.tmp / "changing.yaml", starter_entries(""))
    settings = CategorySettings(file=path, refresh_s=0.01)
    setup.provider.texts.clear()
    service = CategoryService(setup.store, MODEL, settings, lambda: setup.provider)
    first = service.index.view()
    assert {fp: name for fp, (name, _) in first.labels.items()} == {
        fp: c for fp, c in expected_labels(setup, classifier_for(path, setup.provider)).items()
        if c != NOT_EMBEDDED}  # fmt: skip
    # A new file: one category renamed with a new description, one dropped.
    entries = starter_entries("")
    entries[0] = ("Took too long", "the job waited past its deadline for a reply", entries[0][2])
    dropped = entries.pop(1)[0]
    write_file(path, entries)
    second = service.index.view()
    relabeled = expected_labels(setup, classifier_for(path, setup.provider))
    assert {fp: name for fp, (name, _) in second.labels.items()} == {
        fp: c for fp, c in relabeled.items() if c != NOT_EMBEDDED}  # fmt: skip
    assert "Took too long" in second.totals and dropped not in second.totals
    assert first.labels != second.labels
    # What was embedded: the two files' label texts, not one error.
    new_texts = {t for c in load_categories(path).categories for t in label_texts(c)}
    error_texts = {text_of_template(t, 10**6).text for t in setup.recomputed.templates.values()}  # type: ignore[union-attr]
    embedded = set(setup.provider.texts)
    assert embedded and not embedded & error_texts
    assert new_texts <= embedded
    # The same file again: nothing embedded, nothing relabeled.
    before = len(setup.provider.texts)
    again = service.index.view()
    assert len(setup.provider.texts) == before and again.labels == second.labels
