"""The benchmarks' own arithmetic (the benchmarks themselves run behind ``make bench``, never as timed tests)."""

from __future__ import annotations

import pytest

from benchmarks.run_bench import _union_seconds


@pytest.mark.parametrize(
    ("intervals", "seconds"),
    [
        ([], 0.0),
        ([(0.0, 2.0)], 2.0),
        ([(0.0, 2.0), (1.0, 3.0)], 3.0),  # overlapping task runs (ingest in threads) count once
        ([(0.0, 5.0), (1.0, 2.0)], 5.0),  # one inside another
        ([(4.0, 6.0), (0.0, 1.0)], 3.0),  # a gap: the time no task ran (Prefect's share) is not counted
        ([(0.0, 1.0), (1.0, 2.0), (3.0, 3.5)], 2.5),
    ],
)
def test_union_of_task_intervals(intervals, seconds):
    assert _union_seconds(intervals) == pytest.approx(seconds)
