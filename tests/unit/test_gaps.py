"""Which offsets a stream skipped, given the last one it applied."""

from __future__ import annotations

from streams.gaps import skipped_range


def test_no_gap_for_the_next_offset_a_replay_or_a_first_event() -> None:
    assert list(skipped_range(None, 40)) == []  # nothing applied yet: nothing to repair
    assert list(skipped_range(9, 10)) == []
    assert list(skipped_range(9, 5)) == []  # replaying from an earlier commit


def test_the_offsets_between_are_the_gap() -> None:
    assert list(skipped_range(339, 342)) == [340, 341]
