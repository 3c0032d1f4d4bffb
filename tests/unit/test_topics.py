from __future__ import annotations

from streams.topics import DAY_MS, ExistingTopic, plan_topics, topic_catalog


def existing_like_catalog(prefix: str = "jobtrail.") -> dict[str, ExistingTopic]:
    return {
        spec.name: ExistingTopic(
            spec.name, spec.partitions, spec.replication_factor, dict(spec.config)
        )
        for spec in topic_catalog(prefix).all()
    }


def test_catalog_names_carry_the_prefix() -> None:
    names = [spec.name for spec in topic_catalog("acme.").all()]
    assert names == [
        "acme.job-events",
        "acme.job-events.dlq",
        "acme.attempt-outcomes",
        "acme.vectorize-requests",
        "acme.vectorize-requests.dlq",
        "acme.error-vectors",
    ]


def test_catalog_retention_follows_the_design() -> None:
    catalog = topic_catalog()
    assert catalog.job_events.config["retention.ms"] == "-1"  # source of truth: forever
    assert catalog.error_vectors.config["cleanup.policy"] == "compact"
    assert catalog.vectorize_requests.config["retention.ms"] == str(7 * DAY_MS)
    assert catalog.job_events.key == "job_id"


def test_catalog_partitions_and_replication_are_settings() -> None:
    catalog = topic_catalog("p.", partitions=12, replication=3)
    assert {(s.partitions, s.replication_factor) for s in catalog.all()} == {(12, 3)}


def test_plan_creates_everything_on_an_empty_cluster() -> None:
    plan = plan_topics(topic_catalog(), {})
    assert [s.name for s in plan.create] == [s.name for s in topic_catalog().all()]
    assert plan.drift == () and plan.unchanged == ()


def test_plan_is_empty_when_the_cluster_matches() -> None:
    plan = plan_topics(topic_catalog(), existing_like_catalog())
    assert plan.create == () and plan.drift == ()
    assert len(plan.unchanged) == 6


def test_plan_reports_drift_and_creates_only_what_is_missing() -> None:
    existing = existing_like_catalog()
    events = existing["jobtrail.job-events"]
    existing["jobtrail.job-events"] = ExistingTopic(
        events.name, 3, 1, {**events.config, "retention.ms": "604800000"}
    )
    del existing["jobtrail.error-vectors"]
    plan = plan_topics(topic_catalog(), existing)
    assert [s.name for s in plan.create] == ["jobtrail.error-vectors"]
    assert [(d.topic, d.setting, d.wanted, d.actual) for d in plan.drift] == [
        ("jobtrail.job-events", "partitions", "6", "3"),
        ("jobtrail.job-events", "retention.ms", "-1", "604800000"),
    ]
    assert "partitions is 3, catalog wants 6" in str(plan.drift[0])
    assert "jobtrail.job-events" not in plan.unchanged
