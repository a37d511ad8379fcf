"""Which snapshots the cleanup deletes: the seed's DELETE statement is the reference."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from jobs_orchestration.db.email_parser import SnapshotType
from jobs_orchestration.snapshots.cleanup import CleanupOptions, run_cleanup
from jobs_orchestration.snapshots.retention import retention_cutoff
from jobs_orchestration.snapshots.store import LocalFolderStore
from jobs_orchestration_tests.support.snapshots import (
    NOW,
    add_attachment_row,
    add_order,
    add_snapshots,
    snapshot_state,
)

SEED_STATEMENT = """
    DELETE FROM snapshot_files WHERE snapshot_type = 'ParseSessionSnapshot'
      AND created_at < CAST(:now AS timestamptz) - INTERVAL '7 days'
      AND NOT EXISTS (SELECT 1 FROM order_attachments oa WHERE oa.file_id = snapshot_files.file_id)
    RETURNING file_id
"""


@pytest.fixture
def store(snapshot_root):
    return LocalFolderStore(snapshot_root)


def seed_edge_cases(connection, store):
    week = dt.timedelta(days=7)
    oslo = ZoneInfo("Europe/Oslo")
    add_snapshots(connection, store, ["exactly-7-days"], created_at=NOW - week)
    add_snapshots(
        connection, store, ["a-microsecond-older"], created_at=NOW - week - dt.timedelta(microseconds=1)
    )
    add_snapshots(connection, store, ["old"], created_at=NOW - dt.timedelta(days=30))
    add_snapshots(connection, store, ["fresh"], created_at=NOW - dt.timedelta(days=1))
    add_snapshots(
        connection,
        store,
        ["old-attachment-type"],
        created_at=NOW - dt.timedelta(days=400),
        snapshot_type=SnapshotType.ORDER_ATTACHMENT,
    )
    add_snapshots(connection, store, ["referenced-once-of-several"], created_at=NOW - dt.timedelta(days=30))
    add_snapshots(
        connection,
        store,
        ["referenced-attachment-type"],
        created_at=NOW - dt.timedelta(days=30),
        snapshot_type=SnapshotType.ORDER_ATTACHMENT,
    )
    # Created 7 days and 30 minutes before NOW, written in Oslo's local time (UTC+1 in November).
    add_snapshots(
        connection,
        store,
        ["oslo-local-time-expired"],
        created_at=(NOW - week - dt.timedelta(minutes=30)).astimezone(oslo),
    )
    add_snapshots(
        connection,
        store,
        ["oslo-local-time-kept"],
        created_at=(NOW - week + dt.timedelta(minutes=30)).astimezone(oslo),
    )
    first, second, third = add_order(connection), add_order(connection), add_order(connection)
    add_attachment_row(connection, first, "some-other-file")
    add_attachment_row(connection, second, "referenced-once-of-several")
    add_attachment_row(connection, third, "yet-another-file")
    add_attachment_row(connection, third, "referenced-attachment-type")


EXPECTED_DELETED = {"a-microsecond-older", "old", "oslo-local-time-expired"}


def test_the_rule_deletes_what_the_seed_statement_deletes(email_parser_db, store):
    with email_parser_db.begin() as connection:
        seed_edge_cases(connection, store)
        seed_deleted = set(connection.execute(sa.text(SEED_STATEMENT), {"now": NOW}).scalars())
        connection.rollback()
    assert seed_deleted == EXPECTED_DELETED

    with email_parser_db.begin() as connection:
        seed_edge_cases(connection, store)
    report = run_cleanup(email_parser_db.engine, store, CleanupOptions(), now=NOW)

    assert report.deleted_count == report.candidates == len(EXPECTED_DELETED)
    assert report.error_count == 0 and report.bytes_freed == 300
    with email_parser_db.begin() as connection:
        state = snapshot_state(connection)
    purged = {file_id for file_id, (deleted_at, purged_at, _) in state.items() if purged_at}
    marked = {file_id for file_id, (deleted_at, _, _) in state.items() if deleted_at}
    assert purged == marked == EXPECTED_DELETED
    assert all(state[file_id][1] == NOW for file_id in purged)
    for file_id in state:
        assert store.exists(f"{file_id}.pdf") == (file_id not in EXPECTED_DELETED), file_id


def test_the_cutoff_is_the_same_instant_in_any_zone():
    oslo_now = NOW.astimezone(ZoneInfo("Europe/Oslo"))
    assert retention_cutoff(oslo_now, 7) == retention_cutoff(NOW, 7) == NOW - dt.timedelta(days=7)
    assert retention_cutoff(NOW, 7).tzinfo == dt.UTC


@pytest.mark.parametrize(
    ("now", "days", "message"),
    [
        (dt.datetime(2026, 11, 23, 3, 0), 7, "has no time zone"),
        (NOW, 0, "retention_days=0"),
        (NOW, True, "retention_days=True"),
    ],
)
def test_bad_cutoff_input_is_refused(now, days, message):
    with pytest.raises(ValueError, match=message):
        retention_cutoff(now, days)
