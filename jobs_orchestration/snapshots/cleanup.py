"""The nightly snapshot cleanup: mark expired rows, delete their stored files, record them purged.

Two phases per batch, each batch bounded, each one statement:
1. Mark: `UPDATE ... SET deleted_at = now WHERE id = ANY(ARRAY(SELECT ... LIMIT batch_size FOR UPDATE
   SKIP LOCKED)) RETURNING id` marks the next expired, unreferenced, unmarked rows and commits. Rows
   are picked in id order after the last batch (keyset, no OFFSET), skipping locked ones, so a row an
   attachment is being made to right now is simply left for a later run.
2. Purge: in one transaction, the batch's rows (its id range) are re-checked and locked
   (`UPDATE ... SET purged_at` with the rule in its WHERE, RETURNING what passed), their files are
   deleted, the rows whose file delete failed get `purged_at` back to NULL and a `purge_error`, and
   the transaction commits. So `purged_at` is only ever committed for a file that is gone. A crash in
   between rolls back: the rows stay marked and the next run retries them first (deleting an already
   missing file is success); an attach meanwhile finds the row marked and checks whether its file is
   still there (attach.py). That is also why the purge commits without waiting for its WAL to reach
   the disk (`synchronous_commit = off`, that transaction only): a purge the database loses in a crash
   is the same case. The mark's commit is durable before any file goes.
Both updates write only unindexed columns of a table with room on its pages (migration
email_parser_0003_hot_updates), so PostgreSQL can make them HOT: a new row version on the same page
and no index entry, which is most of what separated them from the seed's bare DELETE.

Race safety with `attach_snapshot_to_order` on PostgreSQL (READ COMMITTED). The attach locks the
snapshot row (SELECT ... FOR UPDATE), refuses if `purged_at` is set, and otherwise writes the row with
`deleted_at = NULL` before inserting the attachment, all in one transaction. The purge's UPDATE locks
the same row before any file is touched, so exactly one of them goes first:
- attach first: the purge's UPDATE waits for the lock, then PostgreSQL re-evaluates its WHERE on the
  committed row version, which is no longer marked, so the row is skipped and its file kept. An attach
  committed before the purge statement began is seen directly (not marked, and referenced).
- purge first: the attach waits until the purge commits. If the file was deleted it sees `purged_at`
  and fails clearly (the reference was never made); if the delete failed, the row is still unpurged,
  the attach clears the mark, and the file stays.
Row locks are held only while one batch's files are deleted, so an attach waits at most that long.
A mark can still land on a row referenced a moment earlier (the mark's snapshot predates the attach's
commit); the purge's re-check catches it and takes the mark off again (`unmarked` in the report).

Batches are purged on `delete_workers` threads while the main thread marks the next one, so the
database work and the file deletes overlap; their id ranges are disjoint, so they never wait on each
other. At most `delete_workers + 1` batches are held at a time and the report keeps counters and at
most MAX_ERROR_DETAILS messages, so memory does not grow with the backlog.

Tombstones (rows whose file is gone) answer "what was freed, when" and feed the 30-day savings; those
older than `tombstone_retention_days` (90 by default, at least 30) are deleted at the end of each run,
in batches bounded like the others.

Only one cleanup runs at a time (a PostgreSQL advisory lock, besides Dagster's run tag limit), and a
run stops after `max_batches` batches or `time_budget_seconds`, so a large backlog goes over nights.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.engine import Engine

from jobs_orchestration.progress import REPORT_INTERVAL_SECONDS, ProgressMeter, ProgressUpdate
from jobs_orchestration.snapshots.retention import (
    DEFAULT_RETENTION_DAYS,
    is_awaiting_purge,
    is_expired,
    is_referenced,
    is_still_purgeable,
    is_unmarked,
    retention_cutoff,
    snapshot_files,
)
from jobs_orchestration.snapshots.store import SnapshotStore

log = logging.getLogger(__name__)

ADVISORY_LOCK_KEY = 0x736E6170_636C6E  # "snapclean": one cleanup per database
MAX_ERROR_DETAILS = 100
"""Errors kept with their text in a report; the count is always complete."""
SAVINGS_WINDOW_DAYS = 30
DEFAULT_TOMBSTONE_RETENTION_DAYS = 90


class CleanupAlreadyRunning(RuntimeError):
    pass


class TooManyDeletions(RuntimeError):
    """The run would delete more than `max_deletions`; nothing was changed."""


@dataclass(frozen=True)
class CleanupOptions:
    retention_days: int = DEFAULT_RETENTION_DAYS
    batch_size: int = 5000
    dry_run: bool = False
    max_deletions: int = 100_000
    max_batches: int = 1000
    time_budget_seconds: float = 3600.0
    delete_workers: int = 4
    """Batches purged in parallel, each on a database connection of its own (at most 8)."""
    tombstone_retention_days: int | None = DEFAULT_TOMBSTONE_RETENTION_DAYS
    """Rows whose file went longer ago than this are deleted; None keeps tombstones for ever."""

    def __post_init__(self) -> None:
        for name in ("retention_days", "batch_size", "max_batches", "delete_workers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} must be a whole number, at least 1")
        if isinstance(self.max_deletions, bool) or not isinstance(self.max_deletions, int):
            raise ValueError(f"max_deletions={self.max_deletions!r} must be a whole number")
        if self.max_deletions < 0:
            raise ValueError(f"max_deletions={self.max_deletions!r} must not be negative")
        if self.delete_workers > 8:
            raise ValueError(
                f"delete_workers={self.delete_workers!r} must be at most 8 (database connections)"
            )
        days = self.tombstone_retention_days
        if days is not None and (
            isinstance(days, bool) or not isinstance(days, int) or days < SAVINGS_WINDOW_DAYS
        ):
            raise ValueError(
                f"tombstone_retention_days={days!r} must be a whole number of days, at least "
                f"{SAVINGS_WINDOW_DAYS} (the storage savings window reads the tombstones), or None"
            )
        if not self.time_budget_seconds > 0:
            raise ValueError(f"time_budget_seconds={self.time_budget_seconds!r} must be more than 0")

    @property
    def most_rows_per_run(self) -> int:
        return self.batch_size * self.max_batches


@dataclass
class CleanupReport:
    started_at: dt.datetime
    cutoff: dt.datetime
    dry_run: bool
    candidates: int = 0
    """Rows this run found to delete: expired and unmarked, plus marked ones awaiting their file delete."""
    candidate_bytes: int = 0
    planned: int = 0
    """Candidates this run may work on at most (`max_batches * batch_size`)."""
    marked: int = 0
    deleted_count: int = 0
    bytes_freed: int = 0
    unmarked: int = 0
    """Marked rows that gained a reference before their file was deleted: kept, mark removed."""
    error_count: int = 0
    errors: list[str] = field(default_factory=list)
    tombstones_purged: int = 0
    """Tombstones older than `tombstone_retention_days` deleted by this run."""
    batches: int = 0
    stopped_by: str | None = None
    """"max_batches" or "time_budget" when the run ended before the backlog did."""
    duration_seconds: float = 0.0

    def add(self, batch: BatchResult) -> None:
        self.deleted_count += batch.deleted_count
        self.bytes_freed += batch.bytes_freed
        self.unmarked += batch.unmarked
        self.error_count += len(batch.errors)
        for name, message in batch.errors.items():
            if len(self.errors) < MAX_ERROR_DETAILS:
                self.errors.append(f"{name}: {message}")


def run_cleanup(
    engine: Engine,
    store: SnapshotStore,
    options: CleanupOptions,
    *,
    now: dt.datetime | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    publish_progress: Callable[[ProgressUpdate], None] | None = None,
    progress_interval: float = REPORT_INTERVAL_SECONDS,
) -> CleanupReport:
    """One cleanup run. Raises CleanupAlreadyRunning or TooManyDeletions before changing anything;
    file delete failures do not raise: they are counted in the report and retried next run. After a
    batch, at most every `progress_interval` seconds, the rows handled so far against those planned
    are logged and given to `publish_progress`."""
    started = monotonic()
    now = now or dt.datetime.now(dt.UTC)
    report = CleanupReport(
        started_at=now, cutoff=retention_cutoff(now, options.retention_days), dry_run=options.dry_run
    )
    with _exclusive_run(engine):
        with engine.connect() as connection:
            report.candidates, report.candidate_bytes = count_candidates(connection, report.cutoff)
        report.planned = min(report.candidates, options.most_rows_per_run)
        if options.dry_run:
            report.duration_seconds = monotonic() - started
            return report
        if report.planned > options.max_deletions:
            raise TooManyDeletions(
                f"the snapshot cleanup would delete {report.planned} files (of {report.candidates} "
                f"candidates older than {report.cutoff.isoformat()}), more than max_deletions="
                f"{options.max_deletions}; nothing was changed. Check the clock and the order "
                "attachments table; if the number is right, run again with a higher max_deletions."
            )
        deadline = started + options.time_budget_seconds
        progress = ProgressMeter(
            "snapshot cleanup",
            "snapshot files",
            report.planned,
            log=log,
            publish=publish_progress,
            interval=progress_interval,
        )

        def may_continue() -> bool:
            if report.batches >= options.max_batches:
                report.stopped_by = "max_batches"
            elif monotonic() >= deadline:
                report.stopped_by = "time_budget"
            return report.stopped_by is None

        # Batches are purged on worker threads, each in its own transaction, while the main thread
        # marks the next one; at most `delete_workers + 1` batches are held at once, so memory stays
        # bounded whatever the backlog.
        in_flight: deque[Future[BatchResult]] = deque()

        def collect_oldest() -> None:
            batch = in_flight.popleft().result()
            report.add(batch)
            progress.advance(batch.rows_handled)
            progress.poll()

        def submit(ids: list[int]) -> None:
            in_flight.append(pool.submit(purge_batch, engine, store, ids, now))
            report.batches += 1
            while len(in_flight) > options.delete_workers:
                collect_oldest()

        # The store's run of deletes (the local store keeps its folders open for it) ends after the
        # pool has finished every batch.
        with (
            store.deleting(),
            ThreadPoolExecutor(options.delete_workers, thread_name_prefix="snapshot-purge") as pool,
        ):
            try:
                # Rows an earlier run marked but could not purge go first, so failures are never lost.
                after = 0
                while may_continue():
                    with engine.connect() as connection:
                        ids = awaiting_purge_ids(connection, after, options.batch_size)
                    if ids:
                        submit(ids)
                    if len(ids) < options.batch_size:
                        break  # the walk reached the end of the table
                    after = ids[-1]
                # The retried ranges may span rows the mark is about to reach: finish them first, so
                # no two batches in flight ever cover the same row.
                while in_flight:
                    collect_oldest()
                after = 0
                while may_continue():
                    with engine.begin() as connection:
                        ids = mark_batch(connection, report.cutoff, now, after, options.batch_size)
                    if ids:
                        report.marked += len(ids)
                        submit(ids)
                    if len(ids) < options.batch_size:
                        break  # rows skipped as locked are left to a later run
                    after = ids[-1]
            finally:
                while in_flight:
                    collect_oldest()
        progress.finish()
        if options.tombstone_retention_days is not None:
            tombstone_cutoff = now - dt.timedelta(days=options.tombstone_retention_days)
            after = 0
            # Bounded like the file batches, on a count of its own: old tombstones cost rows only.
            for _ in range(options.max_batches):
                if monotonic() >= deadline:
                    break
                with engine.begin() as connection:
                    ids = purge_tombstones(connection, tombstone_cutoff, after, options.batch_size)
                report.tombstones_purged += len(ids)
                if len(ids) < options.batch_size:
                    break
                after = ids[-1]
    report.duration_seconds = monotonic() - started
    for message in report.errors:
        log.warning("snapshot file not deleted, will retry next run: %s", message)
    return report


def count_candidates(connection: Connection, cutoff: dt.datetime) -> tuple[int, int]:
    """How many rows (and bytes) a run would delete without limits."""
    row = connection.execute(
        sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(snapshot_files.c.size_bytes), 0)).where(
            sa.or_(sa.and_(is_unmarked(), is_expired(cutoff)), is_awaiting_purge())
        )
    ).one()
    return int(row[0]), int(row[1])


def awaiting_purge_ids(connection: Connection, after: int, limit: int) -> list[int]:
    """Marked rows whose file delete failed or was interrupted. No index covers them (it would stop
    the cleanup's updates from being HOT): this walks the table, once per run as there are few."""
    return list(
        connection.execute(
            sa.select(snapshot_files.c.id)
            .where(is_awaiting_purge(), snapshot_files.c.id > after)
            .order_by(snapshot_files.c.id)
            .limit(limit)
        ).scalars()
    )


def mark_batch(
    connection: Connection, cutoff: dt.datetime, now: dt.datetime, after: int, limit: int
) -> list[int]:
    """Mark the next `limit` expired rows with id > `after`; returns their ids in order. One
    statement: the rows are picked in id order and locked (skipping rows locked right now, which a
    later run takes), then updated by primary key."""
    picked = (
        sa.select(snapshot_files.c.id)
        .where(snapshot_files.c.id > after, is_unmarked(), is_expired(cutoff))
        .order_by(snapshot_files.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    marked = connection.execute(
        sa.update(snapshot_files)
        .where(picked_rows(connection, picked))
        .values(deleted_at=now)
        .returning(snapshot_files.c.id)
    ).scalars()
    return sorted(marked)


def purge_tombstones(connection: Connection, cutoff: dt.datetime, after: int, limit: int) -> list[int]:
    """Delete the next `limit` tombstones with id > `after` whose file went before `cutoff`; returns
    their ids in order. An attach to one of them then fails as for an unknown snapshot."""
    picked = (
        sa.select(snapshot_files.c.id)
        .where(snapshot_files.c.id > after, snapshot_files.c.purged_at < cutoff)
        .order_by(snapshot_files.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    deleted = connection.execute(
        sa.delete(snapshot_files).where(picked_rows(connection, picked)).returning(snapshot_files.c.id)
    ).scalars()
    return sorted(deleted)


def picked_rows(connection: Connection, picked: sa.Select[tuple[int]]) -> sa.ColumnElement[bool]:
    """`id` is one of the ids `picked` selects. On PostgreSQL they go through `ARRAY(...)`, so the
    statement is a primary-key lookup per id (`IN (SELECT ...)` lets the planner hash-join the whole
    table on every batch)."""
    if connection.dialect.name == "postgresql":
        return snapshot_files.c.id == sa.any_(sa.func.ARRAY(picked.scalar_subquery()))
    return snapshot_files.c.id.in_(picked.scalar_subquery())


@dataclass
class BatchResult:
    deleted_count: int = 0
    bytes_freed: int = 0
    unmarked: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    """file id (storage key): message"""

    @property
    def rows_handled(self) -> int:
        """Rows of the batch that got an outcome: deleted, failed, or kept for a new reference."""
        return self.deleted_count + len(self.errors) + self.unmarked


def purge_batch(engine: Engine, store: SnapshotStore, ids: Sequence[int], now: dt.datetime) -> BatchResult:
    """Delete the files of the marked rows `ids` (ascending) and record them purged (see the module's
    docstring).

    One statement locks and re-checks the rows and sets `purged_at` on those still marked and
    unreferenced; their files are deleted, and a failed delete takes `purged_at` back before the
    commit. A marked row that gained a reference is left out, and loses its mark in a second statement
    run only then. Rows are found by the batch's primary-key range, not by the list: `deleted_at` has
    no index and its statistics lag behind the marks, so with a list the planner may expect a single
    marked row and join the list against a scan of the whole table."""
    result = BatchResult()
    in_batch = snapshot_files.c.id.between(ids[0], ids[-1])
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # The purge's commit need not wait for its WAL to reach the disk: if the database loses it
            # in a crash, the rows are left marked, which the next run and the attach already handle
            # (the mark's commit, which must be durable before any file goes, stays synchronous).
            connection.execute(sa.text("SET LOCAL synchronous_commit = off"))
        purged = connection.execute(
            sa.update(snapshot_files)
            .where(in_batch, is_still_purgeable())
            .values(purged_at=now, purge_error=None)
            .returning(
                snapshot_files.c.id,
                snapshot_files.c.file_id,
                snapshot_files.c.storage_key,
                snapshot_files.c.size_bytes,
            )
        ).all()
        if len(purged) < len(ids):
            result.unmarked = connection.execute(
                sa.update(snapshot_files)
                .where(in_batch, is_awaiting_purge(), is_referenced())
                .values(deleted_at=None)
            ).rowcount
        if not purged:
            return result
        outcome = store.delete_many([row.storage_key for row in purged])
        if outcome.errors:
            failed = [row for row in purged if row.storage_key in outcome.errors]
            connection.execute(
                sa.update(snapshot_files)
                .where(snapshot_files.c.id == sa.bindparam("row_id"))
                .values(purged_at=None, purge_error=sa.bindparam("error")),
                [{"row_id": row.id, "error": str(outcome.errors[row.storage_key])[:2000]} for row in failed],
            )
    for row in purged:
        if row.storage_key in outcome.errors:
            result.errors[f"{row.file_id} ({row.storage_key})"] = str(outcome.errors[row.storage_key])
        else:
            result.deleted_count += 1
            result.bytes_freed += row.size_bytes
    return result


def storage_savings(
    connection: Connection, now: dt.datetime, days: int = SAVINGS_WINDOW_DAYS
) -> tuple[int, int]:
    """Files and bytes the cleanup freed in the last `days` days, read from the tombstones."""
    row = connection.execute(
        sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(snapshot_files.c.size_bytes), 0)).where(
            snapshot_files.c.purged_at >= now - dt.timedelta(days=days)
        )
    ).one()
    return int(row[0]), int(row[1])


@contextlib.contextmanager
def _exclusive_run(engine: Engine) -> Iterator[None]:
    """Hold a session-level PostgreSQL advisory lock for the run on a connection of its own."""
    if engine.dialect.name != "postgresql":
        yield  # SQLite serves one local developer; Dagster's run tag limit still applies.
        return
    with engine.connect() as connection:
        acquired = connection.execute(
            sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
        ).scalar_one()
        connection.commit()
        if not acquired:
            raise CleanupAlreadyRunning(
                "another snapshot cleanup holds the lock on this database; this run changed nothing"
            )
        try:
            yield
        finally:
            connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY})
            connection.commit()
