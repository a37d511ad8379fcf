"""Mark, delete files, record purged: under storage failures, dry runs and the operator's limits."""

import datetime as dt
import threading
import time
from collections import Counter

import pytest
import sqlalchemy as sa

from jobs_orchestration.snapshots.attach import (
    SnapshotAlreadyPurged,
    UnknownSnapshot,
    attach_snapshot_to_order,
)
from jobs_orchestration.snapshots.cleanup import (
    ADVISORY_LOCK_KEY,
    CleanupAlreadyRunning,
    CleanupOptions,
    TooManyDeletions,
    run_cleanup,
    storage_savings,
)
from jobs_orchestration.snapshots.retention import snapshot_files
from jobs_orchestration.snapshots.store import DeleteOutcome, LocalFolderStore
from jobs_orchestration_tests.support.snapshots import NOW, add_order, add_snapshots, snapshot_state

OLD = NOW - dt.timedelta(days=10)


class FlakyStore(LocalFolderStore):
    """A real folder store whose deletes fail for chosen keys, and which records every key it was
    asked to delete."""

    def __init__(self, root, failing: set[str] = frozenset()):
        super().__init__(root)
        self.failing = set(failing)
        self.requested: Counter[str] = Counter()
        self._lock = threading.Lock()

    def delete_many(self, keys):
        with self._lock:
            self.requested.update(keys)
        outcome = super().delete_many([key for key in keys if key not in self.failing])
        outcome.errors.update({key: "ServiceUnavailable: try again" for key in keys if key in self.failing})
        return outcome


def seed(email_parser_db, store, count, prefix="s", created_at=OLD):
    file_ids = [f"{prefix}{i:04d}" for i in range(count)]
    with email_parser_db.begin() as connection:
        add_snapshots(connection, store, file_ids, created_at=created_at)
    return file_ids


def test_failed_file_deletes_are_retried_next_run_and_nothing_is_deleted_twice(
    email_parser_db, snapshot_root
):
    store = FlakyStore(snapshot_root)
    file_ids = seed(email_parser_db, store, 25)
    failing = {f"{file_id}.pdf" for file_id in file_ids[3:6]}
    store.failing = set(failing)
    options = CleanupOptions(batch_size=7, delete_workers=3)

    first = run_cleanup(email_parser_db.engine, store, options, now=NOW)
    assert (first.candidates, first.marked, first.deleted_count, first.error_count) == (25, 25, 22, 3)
    assert first.bytes_freed == 2200 and len(first.errors) == 3
    assert "s0003 (s0003.pdf): ServiceUnavailable: try again" in first.errors
    with email_parser_db.begin() as connection:
        state = snapshot_state(connection)
    for file_id, (deleted_at, purged_at, purge_error) in state.items():
        assert deleted_at == NOW  # every row marked before any file went
        failed = f"{file_id}.pdf" in failing
        assert (purged_at is None) == failed and (purge_error is not None) == failed
        assert store.exists(f"{file_id}.pdf") == failed

    store.failing.clear()
    later = NOW + dt.timedelta(days=1)
    second = run_cleanup(email_parser_db.engine, store, options, now=later)
    assert (second.candidates, second.marked, second.deleted_count, second.error_count) == (3, 0, 3, 0)
    with email_parser_db.begin() as connection:
        state = snapshot_state(connection)
    assert all(purged_at is not None and error is None for _, purged_at, error in state.values())
    assert list(store.iter_keys()) == []
    # Each file was asked for once, except the three failures, asked for again on the retry.
    assert {key for key, times in store.requested.items() if times > 1} == failing
    assert max(store.requested.values()) == 2

    third = run_cleanup(email_parser_db.engine, store, options, now=later)
    assert (third.candidates, third.deleted_count) == (0, 0)


def test_an_interrupted_purge_rolls_back_and_is_retried(email_parser_db, snapshot_root):
    store = FlakyStore(snapshot_root)
    seed(email_parser_db, store, 5)

    class Crash(Exception):
        pass

    def crashing_delete_many(keys):
        LocalFolderStore.delete_many(store, keys)  # the files go, then the process "dies"
        raise Crash

    store.delete_many = crashing_delete_many
    with pytest.raises(Crash):
        run_cleanup(email_parser_db.engine, store, CleanupOptions(), now=NOW)
    with email_parser_db.begin() as connection:
        assert all(d == NOW and p is None for d, p, _ in snapshot_state(connection).values())
    # Marked, not recorded purged, and the file gone: the attach must not reference a missing file.
    with email_parser_db.begin() as connection:
        order_id = add_order(connection)
        with pytest.raises(SnapshotAlreadyPurged, match="file_id='s0000' was marked .* its file is gone"):
            attach_snapshot_to_order(connection, order_id, "s0000", store=store)

    del store.delete_many
    report = run_cleanup(email_parser_db.engine, store, CleanupOptions(), now=NOW)
    assert (report.candidates, report.deleted_count, report.error_count) == (5, 5, 0)


def test_dry_run_changes_nothing(email_parser_db, snapshot_root):
    store = FlakyStore(snapshot_root)
    seed(email_parser_db, store, 12)
    with email_parser_db.begin() as connection:
        before = snapshot_state(connection)

    report = run_cleanup(
        email_parser_db.engine, store, CleanupOptions(dry_run=True, max_deletions=1), now=NOW
    )
    assert (report.candidates, report.candidate_bytes, report.deleted_count) == (12, 1200, 0)
    with email_parser_db.begin() as connection:
        assert snapshot_state(connection) == before
    assert len(list(store.iter_keys())) == 12 and not store.requested


def test_max_deletions_refuses_the_run_and_changes_nothing(email_parser_db, snapshot_root):
    store = FlakyStore(snapshot_root)
    seed(email_parser_db, store, 12)
    with pytest.raises(TooManyDeletions, match=r"would delete 12 files .* more than max_deletions=11"):
        run_cleanup(email_parser_db.engine, store, CleanupOptions(max_deletions=11), now=NOW)
    with email_parser_db.begin() as connection:
        assert all(d is None for d, _, _ in snapshot_state(connection).values())
    assert not store.requested

    # A run bounded to fewer batches plans fewer deletions, and the backlog goes over several runs.
    options = CleanupOptions(max_deletions=10, batch_size=5, max_batches=2)
    first = run_cleanup(email_parser_db.engine, store, options, now=NOW)
    assert (first.deleted_count, first.stopped_by) == (10, "max_batches")
    second = run_cleanup(email_parser_db.engine, store, options, now=NOW)
    assert (second.deleted_count, second.stopped_by) == (2, None)


def test_the_time_budget_stops_a_run_between_batches(email_parser_db, snapshot_root):
    store = FlakyStore(snapshot_root)
    seed(email_parser_db, store, 9)
    ticks = iter(range(100))
    report = run_cleanup(
        email_parser_db.engine,
        store,
        CleanupOptions(batch_size=3, time_budget_seconds=3),
        now=NOW,
        monotonic=lambda: next(ticks),  # one "second" per check
    )
    assert report.stopped_by == "time_budget" and 0 < report.deleted_count < 9


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("batch_size", 0),
        ("max_deletions", -1),
        ("retention_days", 0),
        ("time_budget_seconds", 0),
        ("tombstone_retention_days", 29),
    ],
)
def test_bad_options_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"{field}={value!r}"):
        CleanupOptions(**{field: value})


def test_one_cleanup_at_a_time(email_parser_db, snapshot_root):
    store = FlakyStore(snapshot_root)
    seed(email_parser_db, store, 3)
    with email_parser_db.engine.connect() as other_run:
        assert other_run.execute(
            sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY}
        ).scalar()
        with pytest.raises(CleanupAlreadyRunning):
            run_cleanup(email_parser_db.engine, store, CleanupOptions(), now=NOW)
        other_run.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})
    assert not store.requested
    assert run_cleanup(email_parser_db.engine, store, CleanupOptions(), now=NOW).deleted_count == 3


def test_attach_takes_the_mark_off_a_marked_snapshot_and_refuses_a_purged_one(email_parser_db, snapshot_root):
    store = FlakyStore(snapshot_root, failing={"s0000.pdf"})
    seed(email_parser_db, store, 2)
    run_cleanup(email_parser_db.engine, store, CleanupOptions(), now=NOW)  # s0000 marked, s0001 purged

    with email_parser_db.begin() as connection:
        order_id = add_order(connection)
        attach_snapshot_to_order(connection, order_id, "s0000", store=store)
        with pytest.raises(SnapshotAlreadyPurged, match="file_id='s0001' was deleted"):
            attach_snapshot_to_order(connection, order_id, "s0001", store=store)
        with pytest.raises(UnknownSnapshot, match="file_id='nope'"):
            attach_snapshot_to_order(connection, order_id, "nope", store=store)
        assert snapshot_state(connection)["s0000"][0] is None

    store.failing.clear()
    report = run_cleanup(email_parser_db.engine, store, CleanupOptions(), now=NOW)
    assert (report.candidates, report.deleted_count) == (0, 0)
    assert store.exists("s0000.pdf")


def test_a_mark_on_a_snapshot_referenced_since_is_taken_off_by_the_purge(email_parser_db, snapshot_root):
    store = FlakyStore(snapshot_root, failing={"s0000.pdf"})
    seed(email_parser_db, store, 1)
    run_cleanup(email_parser_db.engine, store, CleanupOptions(), now=NOW)
    with email_parser_db.begin() as connection:  # an attachment made without the attach function
        connection.execute(
            sa.text(
                "INSERT INTO order_attachments (order_id, file_id, created_at) VALUES (:o, 's0000', now())"
            ),
            {"o": add_order(connection)},
        )
    store.failing.clear()
    report = run_cleanup(email_parser_db.engine, store, CleanupOptions(), now=NOW)
    assert (report.unmarked, report.deleted_count) == (1, 0)
    with email_parser_db.begin() as connection:
        assert snapshot_state(connection)["s0000"][:2] == (None, None)
    assert store.exists("s0000.pdf")


def test_storage_savings_over_30_days_come_from_the_tombstones(email_parser_db, snapshot_root):
    store = FlakyStore(snapshot_root)
    seed(email_parser_db, store, 4, prefix="a", created_at=NOW - dt.timedelta(days=50))
    run_cleanup(email_parser_db.engine, store, CleanupOptions(), now=NOW - dt.timedelta(days=40))
    seed(email_parser_db, store, 3, prefix="b", created_at=NOW - dt.timedelta(days=9))
    run_cleanup(email_parser_db.engine, store, CleanupOptions(), now=NOW - dt.timedelta(days=1))
    with email_parser_db.begin() as connection:
        assert storage_savings(connection, NOW) == (3, 300)


def test_outcome_merge_keeps_both():
    outcome = DeleteOutcome(deleted=["a"])
    outcome.merge(DeleteOutcome(deleted=["b"], errors={"c": "x"}))
    assert outcome.deleted == ["a", "b"] and outcome.errors == {"c": "x"}


def test_old_tombstones_are_deleted_and_recent_ones_kept(email_parser_db, snapshot_root):
    store = FlakyStore(snapshot_root)
    seed(email_parser_db, store, 5, prefix="old", created_at=NOW - dt.timedelta(days=120))
    run_cleanup(email_parser_db.engine, store, CleanupOptions(), now=NOW - dt.timedelta(days=100))
    seed(email_parser_db, store, 2, prefix="recent", created_at=NOW - dt.timedelta(days=50))
    seed(email_parser_db, store, 1, prefix="failing", created_at=NOW - dt.timedelta(days=120))
    store.failing = {"failing0000.pdf"}
    run_cleanup(email_parser_db.engine, store, CleanupOptions(), now=NOW - dt.timedelta(days=40))
    seed(email_parser_db, store, 1, prefix="live", created_at=NOW - dt.timedelta(days=120))
    with email_parser_db.begin() as connection:
        connection.execute(  # an old attachment snapshot: never deleted, however old
            sa.update(snapshot_files)
            .where(snapshot_files.c.file_id == "live0000")
            .values(snapshot_type="OrderAttachmentSnapshot")
        )

    kept_for_ever = run_cleanup(
        email_parser_db.engine, store, CleanupOptions(tombstone_retention_days=None), now=NOW
    )
    assert kept_for_ever.tombstones_purged == 0
    # Bounded like the file batches: two batches of two this run, the rest next run.
    bounded = run_cleanup(email_parser_db.engine, store, CleanupOptions(batch_size=2, max_batches=2), now=NOW)
    assert bounded.tombstones_purged == 4
    rest = run_cleanup(email_parser_db.engine, store, CleanupOptions(), now=NOW)
    assert rest.tombstones_purged == 1
    with email_parser_db.begin() as connection:
        state = snapshot_state(connection)
        # The failed delete stays marked, and so retried, whatever its age; the live row stays.
        assert set(state) == {"recent0000", "recent0001", "failing0000", "live0000"}
        assert state["failing0000"][1] is None and state["failing0000"][0] is not None
        assert storage_savings(connection, NOW) == (0, 0)
        assert storage_savings(connection, NOW, days=45) == (2, 200)


def test_a_run_holds_a_bounded_number_of_batches_whatever_the_backlog(email_parser_db, snapshot_root):
    """While the file deletes are stuck, the run marks at most `delete_workers + 1` batches and
    waits: rows are neither loaded nor marked ahead of what the deletes can take."""
    release = threading.Event()
    batch_sizes: list[int] = []

    class StuckStore(FlakyStore):
        def delete_many(self, keys):
            batch_sizes.append(len(keys))
            release.wait(timeout=30)
            return super().delete_many(keys)

    store = StuckStore(snapshot_root)
    seed(email_parser_db, store, 50)
    options = CleanupOptions(batch_size=5, delete_workers=2)
    reports = []
    run = threading.Thread(
        target=lambda: reports.append(run_cleanup(email_parser_db.engine, store, options, now=NOW))
    )
    run.start()

    def marked_rows() -> int:
        with email_parser_db.engine.connect() as connection:
            return connection.execute(
                sa.select(sa.func.count()).where(snapshot_files.c.deleted_at.is_not(None))
            ).scalar_one()

    try:
        deadline = time.monotonic() + 20
        while marked_rows() < 15 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        assert marked_rows() == 15  # three batches of five: two deleting, one waiting its turn
    finally:
        release.set()
        run.join(timeout=60)
    assert reports[0].deleted_count == 50 and reports[0].batches == 10
    assert max(batch_sizes) == 5 and sum(batch_sizes) == 50
