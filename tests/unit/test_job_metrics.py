"""The job metrics' pure parts: job names capped under `other`, retried attempts counted from the
job read model's retry histogram, figures summed per label."""

from __future__ import annotations

from collections import Counter

from jobtrail.job_metrics import OTHER, job_name_labels, level_label, per_label, retried_attempts
from projections.model import NameView


def test_the_names_with_the_most_jobs_keep_their_label_the_rest_are_other() -> None:
    jobs = {"a": 5, "b": 50, "c": 7, "d": 7}
    assert job_name_labels(jobs, 2) == {"b": "b", "c": "c", "d": OTHER, "a": OTHER}
    assert job_name_labels(jobs, 10) == {name: name for name in jobs}


def test_every_failure_is_a_retry_but_the_last_one_of_a_failed_job() -> None:
    # 3 jobs completed after 2 failures, 1 failed for good after 4, 5 cancelled after 1.
    histogram = {"completed:2": 3, "failed:4": 1, "cancelled:1": 5, "completed:0": 9}
    assert retried_attempts(histogram) == 3 * 2 + 3 + 5
    assert retried_attempts({"failed:0": 2}) == 0


def test_figures_are_summed_per_label() -> None:
    views = {
        "big": NameView(counts=Counter(completed=90, failed=10), active={"j1"}),
        "small-1": NameView(counts=Counter(completed=2, queued=1),
                            retries=Counter({"completed:1": 2})),
        "small-2": NameView(counts=Counter(failed=1), active={"j2", "j3"}),
    }  # fmt: skip
    labels, figures = per_label(views, max_names=1)
    assert labels == {"big": "big", "small-1": OTHER, "small-2": OTHER}
    assert figures[OTHER].states == Counter(completed=2, queued=1, failed=1)
    assert (figures[OTHER].active, figures[OTHER].retries) == (2, 2)
    assert figures["big"].states == Counter(completed=90, failed=10)


def test_the_top_concurrency_level_is_labelled_with_a_plus() -> None:
    assert [level_label(n, 32) for n in (1, 31, 32)] == ["1", "31", "32+"]
