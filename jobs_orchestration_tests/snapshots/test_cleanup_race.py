"""Attachments made while a cleanup runs: no referenced snapshot may lose its file (PostgreSQL)."""

import datetime as dt
import random
import threading
import time

import sqlalchemy as sa

from jobs_orchestration.snapshots.attach import SnapshotAlreadyPurged, attach_snapshot_to_order
from jobs_orchestration.snapshots.cleanup import CleanupOptions, run_cleanup
from jobs_orchestration.snapshots.retention import order_attachments
from jobs_orchestration.snapshots.store import LocalFolderStore
from jobs_orchestration_tests.support.snapshots import NOW, add_order, add_snapshots, snapshot_state

CANDIDATES = 3000
ATTACHING_THREADS = 4


class SlowFolderStore(LocalFolderStore):
    """Deletes take a little longer, as over a network, so attachments land mid-batch."""

    def delete_many(self, keys):
        time.sleep(0.002)
        return super().delete_many(keys)


def test_attachments_racing_a_cleanup_never_lose_their_file(email_parser_db, snapshot_root):
    store = SlowFolderStore(snapshot_root)
    file_ids = [f"race{i:05d}" for i in range(CANDIDATES)]
    with email_parser_db.begin() as connection:
        add_snapshots(connection, store, file_ids, created_at=NOW - dt.timedelta(days=10))
        order_id = add_order(connection)

    cleanup_done = threading.Event()
    attached: list[str] = []
    refused: list[str] = []
    failures: list[BaseException] = []

    def attach_while_cleaning(seed: int) -> None:
        chooser = random.Random(seed)
        try:
            while not cleanup_done.is_set():
                file_id = chooser.choice(file_ids)
                try:
                    with email_parser_db.begin() as connection:
                        attach_snapshot_to_order(connection, order_id, file_id, store=store)
                    attached.append(file_id)
                except SnapshotAlreadyPurged:
                    refused.append(file_id)
        except BaseException as error:  # surfaced by the assertion below
            failures.append(error)

    threads = [threading.Thread(target=attach_while_cleaning, args=(n,)) for n in range(ATTACHING_THREADS)]
    for thread in threads:
        thread.start()
    try:
        report = run_cleanup(
            email_parser_db.engine, store, CleanupOptions(batch_size=50, delete_workers=4), now=NOW
        )
    finally:
        cleanup_done.set()
        for thread in threads:
            thread.join()

    assert not failures, failures
    assert len(attached) > 50 and refused, (len(attached), len(refused))  # the race really happened
    with email_parser_db.begin() as connection:
        state = snapshot_state(connection)
        referenced = set(connection.execute(sa.select(order_attachments.c.file_id)).scalars())
    assert referenced == set(attached)
    for file_id in referenced:
        deleted_at, purged_at, _ = state[file_id]
        assert purged_at is None and deleted_at is None, file_id
        assert store.exists(f"{file_id}.pdf"), f"{file_id} is referenced but its file is gone"
    for file_id in set(refused) - referenced:
        assert state[file_id][1] is not None and not store.exists(f"{file_id}.pdf")
    # Everything else went, and the report agrees with the files on disk.
    gone = {file_id for file_id, (_, purged_at, _) in state.items() if purged_at is not None}
    assert gone == set(file_ids) - referenced
    assert report.deleted_count == len(gone) and report.error_count == 0
    assert len(list(store.iter_keys())) == len(referenced)
