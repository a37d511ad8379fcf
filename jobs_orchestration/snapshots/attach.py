"""Attaching a snapshot to an order: the one call through which the Email Parser references a file.

It is half of the cleanup's race safety (the other half is in `cleanup.purge_batch`). Here the
snapshot's row is locked (SELECT ... FOR UPDATE) and its deletion mark cleared in the caller's
transaction, before the attachment is inserted; see `cleanup.py` for why that is enough while a
cleanup runs. A cleanup that died after deleting files but before committing their purge leaves rows
marked whose file is gone; under the row lock no cleanup is deleting that file, so checking the store
tells the two apart.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import Connection

from jobs_orchestration.snapshots.retention import order_attachments, snapshot_files
from jobs_orchestration.snapshots.store import SnapshotStore


class UnknownSnapshot(LookupError):
    pass


class SnapshotAlreadyPurged(RuntimeError):
    """The cleanup deleted the snapshot's file before the attachment could be made."""


def attach_snapshot_to_order(
    connection: Connection, order_id: int, file_id: str, *, store: SnapshotStore
) -> int:
    """Reference the snapshot `file_id` from order `order_id`; returns the new attachment's id.

    Runs in the caller's transaction; the row lock is held until it commits. A snapshot marked for
    deletion whose file still exists in `store` loses its mark and keeps its file. One whose file is
    already gone is refused with SnapshotAlreadyPurged, and nothing is written.
    """
    snapshot = connection.execute(
        sa.select(
            snapshot_files.c.id,
            snapshot_files.c.storage_key,
            snapshot_files.c.deleted_at,
            snapshot_files.c.purged_at,
        )
        .where(snapshot_files.c.file_id == file_id)
        .with_for_update()
    ).one_or_none()
    if snapshot is None:
        raise UnknownSnapshot(f"no snapshot file has file_id={file_id!r}")
    if snapshot.purged_at is not None:
        raise SnapshotAlreadyPurged(
            f"snapshot file_id={file_id!r} was deleted by the snapshot cleanup at "
            f"{snapshot.purged_at.isoformat()}; its file is gone and cannot be attached to order {order_id}"
        )
    if snapshot.deleted_at is not None and not store.exists(snapshot.storage_key):
        raise SnapshotAlreadyPurged(
            f"snapshot file_id={file_id!r} was marked for deletion at {snapshot.deleted_at.isoformat()} and "
            f"its file is gone (the cleanup deleting it stopped before recording it); it cannot be attached "
            f"to order {order_id}"
        )
    # Always write the row, marked or not: a cleanup waiting on this lock then re-reads the new row
    # version (PostgreSQL re-evaluates its WHERE on it) and sees the mark gone.
    connection.execute(
        sa.update(snapshot_files).where(snapshot_files.c.id == snapshot.id).values(deleted_at=None)
    )
    return connection.execute(
        sa.insert(order_attachments)
        .values(order_id=order_id, file_id=file_id)
        .returning(order_attachments.c.id)
    ).scalar_one()
