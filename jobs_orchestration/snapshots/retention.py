"""Which snapshot files the nightly cleanup may delete, as SQL predicates over the Email Parser tables.

The reference is the original job's statement:
    DELETE FROM SnapshotFiles WHERE snapshotType = 'ParseSessionSnapshot'
      AND createdAt < NOW() - INTERVAL '7 days'
      AND NOT EXISTS (SELECT 1 FROM OrderAttachments oa WHERE oa.fileId = SnapshotFiles.fileId)
A snapshot exactly as old as the retention period stays (strict `<`). An `OrderAttachmentSnapshot` is
never deleted, nor is any snapshot an order attachment references.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from jobs_orchestration.db.email_parser import OrderAttachment, SnapshotFile, SnapshotType
from jobs_orchestration.settings import DEFAULTS

DEFAULT_RETENTION_DAYS = DEFAULTS.snapshot_retention_days

snapshot_files: sa.Table = SnapshotFile.__table__
order_attachments: sa.Table = OrderAttachment.__table__


def retention_cutoff(now: dt.datetime, retention_days: int) -> dt.datetime:
    """Snapshots created strictly before this instant are expired. Days are 24-hour days in UTC, so
    the cutoff does not move with the server's or the schedule's time zone."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now={now!r} has no time zone; pass an aware datetime (e.g. in UTC)")
    if isinstance(retention_days, bool) or not isinstance(retention_days, int) or retention_days < 1:
        raise ValueError(f"retention_days={retention_days!r} must be a whole number of days, at least 1")
    return now.astimezone(dt.UTC) - dt.timedelta(days=retention_days)


def is_referenced() -> sa.ColumnElement[bool]:
    """Some order attachment references the snapshot's file id."""
    return sa.exists().where(order_attachments.c.file_id == snapshot_files.c.file_id)


def is_expired(cutoff: dt.datetime) -> sa.ColumnElement[bool]:
    """The seed statement's rule: a parse-session snapshot older than the cutoff and unreferenced."""
    return sa.and_(
        snapshot_files.c.snapshot_type == SnapshotType.PARSE_SESSION,
        snapshot_files.c.created_at < cutoff,
        ~is_referenced(),
    )


def is_unmarked() -> sa.ColumnElement[bool]:
    return snapshot_files.c.deleted_at.is_(None)


def is_awaiting_purge() -> sa.ColumnElement[bool]:
    """Marked deleted by a cleanup whose file delete failed or was interrupted."""
    return sa.and_(snapshot_files.c.deleted_at.is_not(None), snapshot_files.c.purged_at.is_(None))


def is_still_purgeable() -> sa.ColumnElement[bool]:
    """Checked again, under a row lock, right before the file goes: still marked, still a parse-session
    snapshot, and still unreferenced."""
    return sa.and_(
        is_awaiting_purge(),
        snapshot_files.c.snapshot_type == SnapshotType.PARSE_SESSION,
        ~is_referenced(),
    )
