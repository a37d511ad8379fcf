"""Progress of long work (a deletion, a cleanup): done against a total, the rate and the time left.

The work counts what it finished with `advance` (from any thread) and calls `poll` where it is safe to
report (the thread that drives the work): a report goes out at most every `interval` seconds, so a run
over a million rows writes a few hundred lines, not a million. Work that ends within its first interval
reports nothing; its result says it all. The line goes to the module logger of the work (which the
Dagster instance forwards to the run's event log, `python_logs.managed_python_loggers`), and to
`publish`, which a run uses for interim metadata.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from jobs_orchestration.units import readable_duration

REPORT_INTERVAL_SECONDS = 10.0


@dataclass(frozen=True)
class ProgressUpdate:
    work: str
    """What is being done, e.g. `snapshot cleanup` or `package 12 deletion`."""
    unit: str
    """What is counted, plural: `snapshot files`, `files, ranges and assets`."""
    done: int
    total: int
    elapsed_seconds: float
    finished: bool = False

    @property
    def rate_per_second(self) -> float:
        return self.done / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    @property
    def remaining_seconds(self) -> float | None:
        """At the rate so far; None until something is done."""
        if self.finished or self.done >= self.total:
            return 0.0
        if self.rate_per_second == 0:
            return None
        return (self.total - self.done) / self.rate_per_second

    @property
    def percent(self) -> float:
        return 100.0 * self.done / self.total if self.total else 100.0

    def describe(self) -> str:
        """`snapshot cleanup: 45,000 / 100,000 snapshot files (45%), 1,520/s, about 36 s left`."""
        figures = f"{self.done:,} / {self.total:,} {self.unit} ({self.percent:.0f}%)"
        rate = f"{self.rate_per_second:,.0f}/s"
        if self.finished:
            return f"{self.work}: {figures} in {readable_duration(self.elapsed_seconds)}, {rate}"
        remaining = self.remaining_seconds
        left = "time left unknown" if remaining is None else f"about {readable_duration(remaining)} left"
        return f"{self.work}: {figures}, {rate}, {left}"


class ProgressMeter:
    """Counts finished items against a total and reports at most every `interval` seconds.

    `total` may be a function: it is called once, when the first report is due, so work that ends
    quickly never pays for counting."""

    def __init__(
        self,
        work: str,
        unit: str,
        total: int | Callable[[int], int],
        *,
        log: logging.Logger,
        publish: Callable[[ProgressUpdate], None] | None = None,
        interval: float = REPORT_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.work = work
        self.unit = unit
        self._total = total
        self._log = log
        self._publish = publish
        self._interval = interval
        self._clock = clock
        self._started = clock()
        self._last_report = self._started
        self._reported = False
        self._done = 0
        self._lock = threading.Lock()

    @property
    def done(self) -> int:
        return self._done

    def advance(self, count: int) -> None:
        """Count `count` more items finished. Safe from any thread; reports nothing by itself."""
        with self._lock:
            self._done += count

    def poll(self) -> None:
        """Report if the interval has passed since the last report."""
        now = self._clock()
        if now - self._last_report >= self._interval:
            self._last_report = now
            self._report(now, finished=False)

    def finish(self) -> None:
        """The closing report, given only when interim ones were: it says how long the whole took."""
        if self._reported:
            self._report(self._clock(), finished=True)

    def _report(self, now: float, *, finished: bool) -> None:
        done = self._done
        if callable(self._total):
            # A count taken while the work goes on: what is left, given what was done when it began.
            self._total = self._total(done)
        update = ProgressUpdate(
            self.work, self.unit, done, max(self._total, done), now - self._started, finished
        )
        self._reported = True
        self._log.info(update.describe())
        if self._publish is not None:
            self._publish(update)
