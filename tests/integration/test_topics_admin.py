"""`jobtrail topics apply/check` against a real broker."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import AlterConfigOpType, ConfigEntry, ConfigResource

from streams.admin import TopicAdmin
from streams.settings import KafkaSettings
from streams.topics import plan_topics
from tests.conftest import REPO_ROOT, catalog_of


def jobtrail(kafka: KafkaSettings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "JOBTRAIL_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "JOBTRAIL_TOPIC_PREFIX": kafka.topic_prefix,
    }
    return subprocess.run(
        [sys.executable, "-m", "jobtrail.cli", *args],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_apply_creates_then_check_passes_then_drift_is_reported(kafka_bootstrap: str) -> None:
    kafka = KafkaSettings(
        bootstrap_servers=kafka_bootstrap, topic_prefix=f"test-{uuid.uuid4().hex[:10]}."
    )
    admin = TopicAdmin(kafka)
    names = [s.name for s in catalog_of(kafka).all()]
    try:
        assert jobtrail(kafka, "topics", "check").returncode == 1
        applied = jobtrail(kafka, "topics", "apply")
        assert applied.returncode == 0, applied.stderr
        assert applied.stderr.count("create") == len(names)
        plan = plan_topics(catalog_of(kafka), admin.existing(names))
        assert plan.create == () and plan.drift == ()

        again = jobtrail(kafka, "topics", "apply")
        assert again.returncode == 0 and again.stderr.count("ok") == len(names)

        client = AdminClient({"bootstrap.servers": kafka.bootstrap_servers})
        entry = ConfigEntry("retention.ms", "3600000", incremental_operation=AlterConfigOpType.SET)
        change = ConfigResource(ConfigResource.Type.TOPIC, names[0], incremental_configs=[entry])
        for future in client.incremental_alter_configs([change]).values():
            future.result(15)
        checked = jobtrail(kafka, "topics", "check")
        assert checked.returncode == 1
        assert "retention.ms is 3600000, catalog wants -1" in checked.stderr.replace("\n", "")
    finally:
        admin.delete(names)


def test_cli_reports_an_unreachable_broker_clearly() -> None:
    kafka = KafkaSettings(bootstrap_servers="127.0.0.1:1", topic_prefix="x.")
    env_timeout = {"JOBTRAIL_CONNECT_TIMEOUT_S": "2"}
    os.environ.update(env_timeout)
    try:
        done = jobtrail(kafka, "topics", "check")
    finally:
        os.environ.pop("JOBTRAIL_CONNECT_TIMEOUT_S")
    assert done.returncode == 2
    assert "did not answer within 2 s" in done.stderr


def test_the_processors_internal_stream_topics_exist_before_their_worker_subscribes(
    kafka_bootstrap: str,
) -> None:
    # Created by Faust itself, they could miss the group's first assignment (the metadata did not
    # show them yet) and stay unread: no attempt outcome ever came out. The worker creates them
    # first now, and waits until the metadata shows them with leaders.
    from processors.topology import changelog_topic_names, internal_topic_names
    from processors.worker import ensure_topics

    kafka = KafkaSettings(
        bootstrap_servers=kafka_bootstrap, topic_prefix=f"test-{uuid.uuid4().hex[:10]}."
    )
    admin = TopicAdmin(kafka)
    internal = [*internal_topic_names(kafka).values(), *changelog_topic_names(kafka)]
    try:
        created = ensure_topics(kafka)
        assert set(internal) <= set(created)
        topics = admin.metadata().topics
        for name in internal:
            partitions = topics[name].partitions.values()
            assert len(partitions) == kafka.partitions and all(p.leader >= 0 for p in partitions)
        changelogs = admin.existing(changelog_topic_names(kafka))
        assert all(t.config.get("cleanup.policy") == "compact" for t in changelogs.values())
        assert len(changelogs) == len(changelog_topic_names(kafka))
        assert ensure_topics(kafka) == []  # a restart creates nothing
    finally:
        admin.delete(n for n in admin.metadata().topics if n.startswith(kafka.topic_prefix))
