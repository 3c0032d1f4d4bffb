"""The category classifier on fixed vectors (no model): the best centroid wins, thresholds and
the margin leave errors uncategorized, shared words tip a close call, and a batch gives what each
error alone gives. The lexicon spells codes out in linear time."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import pytest

from jobtrail.categories.classifier import NONE, CategoryClassifier, Thresholds, label_texts
from jobtrail.categories.definitions import Category, CategorySet
from jobtrail.categories.lexicon import evidence, expansions, tokens
from jobtrail.errors import ConfigurationError

TIMEOUT = Category("Timeout", "took longer than its limit", ("deadline exceeded",))
MEMORY = Category("Memory exceeded", "ran out of memory", ("heap out of memory",))
DISK = Category("Disk", "no space left on the volume", ())
CATEGORIES = CategorySet((TIMEOUT, MEMORY, DISK), "test")
AXES = {TIMEOUT.name: 0, MEMORY.name: 1, DISK.name: 2}


def axis_embed(texts: Sequence[str]) -> list[list[float]]:
    """Every label text of a category on that category's own axis: centroids are the axes."""
    owner = {t: AXES[c.name] for c in CATEGORIES.categories for t in label_texts(c)}
    rows = []
    for text in texts:
        row = [0.0, 0.0, 0.0, 0.0]
        row[owner.get(text, 3)] = 1.0  # the background's texts on the fourth axis
        rows.append(row)
    return rows


def classifier(
    min_score: float = 0.5, min_margin: float = 0.0, lexical: float = 0.0
) -> CategoryClassifier:
    return CategoryClassifier.build(CATEGORIES, axis_embed,
                                    Thresholds(min_score, min_margin, lexical))  # fmt: skip


def test_the_nearest_centroid_wins() -> None:
    vectors = np.array([[0.9, 0.1, 0, 0.1], [0.1, 0.8, 0.2, 0], [0, 0, 3, 0]], np.float32)
    labels = classifier().classify(vectors, [frozenset()] * 3)
    assert labels.index.tolist() == [0, 1, 2]
    assert labels.score[2] == pytest.approx(1.0)  # cosine: the length does not matter


def test_far_from_every_category_is_uncategorized() -> None:
    vectors = np.array([[0.3, 0.3, 0.3, 0.9], [0, 0, 0, 0]], np.float32)
    labels = classifier(min_score=0.5).classify(vectors, [frozenset()] * 2)
    assert labels.index.tolist() == [NONE, NONE]


def test_a_close_call_is_uncategorized_under_a_margin() -> None:
    vector = np.array([[0.70, 0.68, 0, 0]], np.float32)
    assert classifier(min_margin=0.0).classify(vector, [frozenset()]).index.tolist() == [0]
    assert classifier(min_margin=0.05).classify(vector, [frozenset()]).index.tolist() == [NONE]


def test_shared_words_tip_a_close_call() -> None:
    vector = np.array([[0.70, 0.71, 0, 0]], np.float32)
    words = [tokens("request deadline exceeded")]
    assert classifier().classify(vector, words).index.tolist() == [1]
    assert classifier(lexical=0.2).classify(vector, words).index.tolist() == [0]


def test_words_every_category_uses_weigh_nothing() -> None:
    same = CategorySet((Category("A", "job broke", ()), Category("B", "job broke", ())), "t")
    built = CategoryClassifier.build(same, lambda ts: [[1.0, 0.0]] * len(ts),
                                     Thresholds(0.0, 0.0, 1.0))  # fmt: skip
    assert built.vocabulary == {}


def test_a_batch_equals_each_error_alone() -> None:
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((200, 4)).astype(np.float32)
    words = [tokens(rng.choice(["deadline", "memory heap", "space volume", "nothing"]))
             for _ in range(200)]  # fmt: skip
    c = classifier(min_score=0.3, min_margin=0.02, lexical=0.2)
    batch = c.classify(vectors, words)
    alone = [c.classify(vectors[i : i + 1], words[i : i + 1]).index[0] for i in range(200)]
    assert batch.index.tolist() == alone


def test_an_error_nearer_the_background_than_its_category_is_uncategorized() -> None:
    vectors = np.array([[0.6, 0, 0, 0.8], [0.8, 0, 0, 0.6]], np.float32)
    without = classifier(min_score=0.5).classify(vectors, [frozenset()] * 2)
    assert without.index.tolist() == [0, 0]
    with_background = CategoryClassifier.build(CATEGORIES, axis_embed,
                                               Thresholds(0.5, 0.0, 0.0, 0.0))  # fmt: skip
    assert with_background.classify(vectors, [frozenset()] * 2).index.tolist() == [NONE, 0]


def test_a_background_text_that_describes_a_category_is_dropped() -> None:
    def background_on_timeout(texts: Sequence[str]) -> list[list[float]]:
        rows = axis_embed(texts)
        return [[1.0, 0, 0, 0] if row[3] else row for row in rows]

    built = CategoryClassifier.build(CATEGORIES, background_on_timeout,
                                     Thresholds(0.5, 0.0, 0.0, 0.0))  # fmt: skip
    assert built.background is not None and len(built.background) == 0
    vector = np.array([[1.0, 0, 0, 0]], np.float32)
    assert built.classify(vector, [frozenset()]).index.tolist() == [0]


def test_vectors_of_another_model_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="different embedding models"):
        classifier().classify(np.zeros((1, 7), np.float32), [frozenset()])


def test_one_category_has_no_runner_up() -> None:
    one = CategoryClassifier.build(CategorySet((TIMEOUT,), "t"), axis_embed,
                                   Thresholds(0.5, 0.1, 0.0))  # fmt: skip
    assert one.classify(np.array([[1, 0, 0, 0]], np.float32), [frozenset()]).index.tolist() == [0]


def test_codes_are_spelled_out() -> None:
    assert "permission denied" in expansions("PermissionError: [Errno 13] Permission denied")
    assert "too many requests rate limit" in expansions("HTTP 429 from upstream")
    assert "connection refused" in expansions("connect ECONNREFUSED 10.0.0.1:5432")
    assert expansions("took 429.5 ms; version 1.429.0; 500kB in 502ms") == []  # not statuses
    assert {"timeout", "error"} - {"error"} <= tokens("TimeoutError: x")  # CamelCase split


def test_evidence_reads_the_template_and_only_the_codes_of_the_sample() -> None:
    template = "OSError: [Errno <num>] Operation failed: <*>\n  File x.py"
    words = evidence(template, "OSError: [Errno 13] Operation failed: '/srv/tenant-a/log'")
    assert {"oserror", "oper", "permiss", "deni"} <= words  # 13: EACCES, permission denied
    assert not {"num", "srv", "tenant", "file"} & words


def test_text_processing_is_bounded_and_linear() -> None:
    for hostile in ("a" * 1_000_000, "[Errno 1" * 100_000, "429 " * 250_000, "Aa" * 500_000):
        started = time.perf_counter()
        evidence(hostile, hostile)
        assert time.perf_counter() - started < 0.5
