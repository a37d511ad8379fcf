"""Builders of Email Parser rows and stored snapshot files for the snapshot cleanup's tests."""

from __future__ import annotations

import datetime as dt
import itertools

import sqlalchemy as sa
from sqlalchemy import Connection

from jobs_orchestration.db.bulk import bulk_insert
from jobs_orchestration.db.email_parser import Order, SnapshotType
from jobs_orchestration.snapshots.retention import order_attachments, snapshot_files
from jobs_orchestration.snapshots.store import SnapshotStore

NOW = dt.datetime(2026, 11, 23, 3, 0, tzinfo=dt.UTC)
SNAPSHOT_COLUMNS = ("file_id", "snapshot_type", "storage_key", "size_bytes", "content_type", "created_at")

orders: sa.Table = Order.__table__  # type: ignore[assignment]


def add_snapshots(
    connection: Connection,
    store: SnapshotStore | None,
    file_ids: list[str],
    *,
    created_at: dt.datetime,
    snapshot_type: SnapshotType = SnapshotType.PARSE_SESSION,
    size_bytes: int = 100,
) -> None:
    """Rows (and, given a store, their files) for `file_ids`; the storage key is `<file_id>.pdf`."""
    rows = [
        (file_id, snapshot_type, f"{file_id}.pdf", size_bytes, "application/pdf", created_at)
        for file_id in file_ids
    ]
    bulk_insert(connection, snapshot_files, SNAPSHOT_COLUMNS, rows)
    if store is not None:
        for file_id in file_ids:
            store.put(f"{file_id}.pdf", b"%PDF" + b"x" * (size_bytes - 4))


_order_numbers = itertools.count(1)


def add_order(connection: Connection) -> int:
    return connection.execute(
        sa.insert(orders)
        .values(reference=f"PO-{next(_order_numbers)}", created_at=NOW)
        .returning(orders.c.id)
    ).scalar_one()


def add_attachment_row(connection: Connection, order_id: int, file_id: str) -> None:
    """An attachment written straight into the table (as rows already there before the cleanup)."""
    connection.execute(
        sa.insert(order_attachments).values(order_id=order_id, file_id=file_id, created_at=NOW)
    )


def snapshot_state(connection: Connection) -> dict[str, tuple]:
    """file_id -> (deleted_at, purged_at, purge_error)."""
    rows = connection.execute(
        sa.select(
            snapshot_files.c.file_id,
            snapshot_files.c.deleted_at,
            snapshot_files.c.purged_at,
            snapshot_files.c.purge_error,
        )
    )
    return {row.file_id: (row.deleted_at, row.purged_at, row.purge_error) for row in rows}
