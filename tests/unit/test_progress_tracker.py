"""/api/health's last progress: when a group's committed offsets last moved, as this API saw."""

from __future__ import annotations

from jobtrail.health import ProgressTracker


def test_progress_is_unknown_until_the_committed_position_moves() -> None:
    tracker = ProgressTracker()
    assert tracker.observe("processors", 100) is None  # first sight: where it stands
    assert tracker.observe("processors", 100) is None  # no move yet
    moved = tracker.observe("processors", 150)
    assert moved is not None
    assert tracker.observe("processors", 150) == moved  # still: the time of that move
    later = tracker.observe("processors", 151)
    assert later is not None and later >= moved
    assert tracker.observe("embedder", 7) is None  # each component on its own
