"""Progress of long work: the figures, how often they are reported, and what quick work reports."""

from __future__ import annotations

import logging

import pytest

from jobs_orchestration.progress import ProgressMeter, ProgressUpdate


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def meter(clock: Clock, total, published: list[ProgressUpdate], interval: float = 10.0) -> ProgressMeter:
    return ProgressMeter(
        "snapshot cleanup",
        "snapshot files",
        total,
        log=logging.getLogger("jobs_orchestration.test_progress"),
        publish=published.append,
        interval=interval,
        clock=clock,
    )


def test_an_update_says_done_total_rate_and_time_left():
    update = ProgressUpdate("snapshot cleanup", "snapshot files", 45_000, 100_000, elapsed_seconds=30.0)

    assert update.describe() == (
        "snapshot cleanup: 45,000 / 100,000 snapshot files (45%), 1,500/s, about 36 s left"
    )
    finished = ProgressUpdate("snapshot cleanup", "snapshot files", 100_000, 100_000, 125.0, finished=True)
    assert finished.describe() == "snapshot cleanup: 100,000 / 100,000 snapshot files (100%) in 2 min, 800/s"
    assert ProgressUpdate("w", "rows", 0, 10, 5.0).describe() == "w: 0 / 10 rows (0%), 0/s, time left unknown"


def test_reports_go_out_at_most_once_an_interval(clock, caplog):
    published: list[ProgressUpdate] = []
    progress = meter(clock, 1_000, published)

    with caplog.at_level(logging.INFO, logger="jobs_orchestration.test_progress"):
        for _ in range(25):
            clock.now += 1.0
            progress.advance(40)
            progress.poll()
        progress.finish()

    assert [(u.done, u.elapsed_seconds, u.finished) for u in published] == [
        (400, 10.0, False),
        (800, 20.0, False),
        (1_000, 25.0, True),
    ]
    assert published[0].remaining_seconds == pytest.approx(15.0)
    assert [record.getMessage() for record in caplog.records] == [u.describe() for u in published]


def test_work_done_within_its_first_interval_reports_nothing_and_counts_nothing(clock):
    published: list[ProgressUpdate] = []
    counted: list[int] = []
    progress = meter(clock, lambda done: counted.append(done) or done + 10, published)

    clock.now += 9.0
    progress.advance(5)
    progress.poll()
    progress.finish()

    assert published == [] and counted == []


def test_a_total_counted_late_adds_what_was_done_before_it(clock):
    published: list[ProgressUpdate] = []
    progress = meter(clock, lambda done: done + 300, published)

    progress.advance(100)
    clock.now += 10.0
    progress.poll()
    progress.advance(300)
    clock.now += 10.0
    progress.poll()

    assert [(u.done, u.total) for u in published] == [(100, 400), (400, 400)]
