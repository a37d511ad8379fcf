"""Snapshot cleanup benchmark on PostgreSQL with real files in a local folder.

Seeds N snapshot rows (60% expired and unreferenced) once into a template database, then times three
runs, each on a fresh copy (CREATE DATABASE ... TEMPLATE) with freshly written files:
  (a) the original job's bare SQL DELETE (no files touched),
  (b) a tight loop that only unlinks the same files,
  (c) the whole cleanup (count, mark, delete files on `--workers` threads, record purged, look for
      old tombstones), in a child process whose own peak RSS (VmHWM) is measured.
All three run on the schema the migrations build (snapshot_files with a fillfactor of 50, so (a)
deletes from the same pages the job updates). The floor is (a)+(b); the target is c/(a+b) <= 1.5 and
a peak RSS <= 300 MB, flat as N grows. The machine's other load moves the figures: run it twice.

    PYTHONPATH=. /work/main/.venv/bin/python benchmarks/snapshot_cleanup.py --rows 100000 --workers 2
    PYTHONPATH=. /work/main/.venv/bin/python benchmarks/snapshot_cleanup.py --rows 1000000 --workers 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY_ROOT))

from jobs_orchestration.db.bulk import bulk_insert  # noqa: E402
from jobs_orchestration.db.email_parser import SnapshotType  # noqa: E402
from jobs_orchestration.db.migrate import upgrade  # noqa: E402
from jobs_orchestration.snapshots.retention import order_attachments, snapshot_files  # noqa: E402
from jobs_orchestration_tests.support.postgres import SERVER_URL  # noqa: E402

NOW = dt.datetime(2026, 11, 23, 3, 0, tzinfo=dt.UTC)
FILE_BYTES = b"%PDF-1.7 one-page snapshot\n" * 3
SEED_DELETE = """
    DELETE FROM snapshot_files WHERE snapshot_type = 'ParseSessionSnapshot'
      AND created_at < CAST(:now AS timestamptz) - INTERVAL '7 days'
      AND NOT EXISTS (SELECT 1 FROM order_attachments oa WHERE oa.file_id = snapshot_files.file_id)
"""
# Of every ten rows: six expired and unreferenced, one expired but attached to an order, one old
# OrderAttachmentSnapshot, two fresh.
KINDS = ["expired"] * 6 + ["attached", "attachment_type", "fresh", "fresh"]


def storage_key(i: int) -> str:
    return f"{i % 256:02x}/f{i:08d}.pdf"


def expired_indexes(rows: int) -> range | list[int]:
    return [i for i in range(rows) if KINDS[i % 10] == "expired"]


def admin_engine() -> sa.Engine:
    return sa.create_engine(SERVER_URL, isolation_level="AUTOCOMMIT")


def database_url(name: str) -> str:
    return make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False)


def seed_template(name: str, rows: int) -> None:
    with admin_engine().connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = database_url(name)
    upgrade(url, ["email_parser"])
    engine = sa.create_engine(url)
    old, fresh = NOW - dt.timedelta(days=30), NOW - dt.timedelta(days=1)

    def snapshot_rows():
        for i in range(rows):
            row_kind = KINDS[i % 10]
            snapshot_type = (
                SnapshotType.ORDER_ATTACHMENT if row_kind == "attachment_type" else SnapshotType.PARSE_SESSION
            )
            created_at = fresh if row_kind == "fresh" else old
            yield (f"f{i:08d}", snapshot_type, storage_key(i), len(FILE_BYTES), "application/pdf", created_at)

    with engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO orders (id, reference, created_at) VALUES (1, 'PO-1', now())")
        )
        bulk_insert(
            connection,
            snapshot_files,
            ("file_id", "snapshot_type", "storage_key", "size_bytes", "content_type", "created_at"),
            snapshot_rows(),
        )
        bulk_insert(
            connection,
            order_attachments,
            ("order_id", "file_id", "created_at"),
            ((1, f"f{i:08d}", NOW) for i in range(rows) if KINDS[i % 10] == "attached"),
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(sa.text("VACUUM ANALYZE"))
    engine.dispose()


def copy_database(template: str) -> str:
    name = f"{template}_copy_{uuid.uuid4().hex[:6]}"
    with admin_engine().connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    return name


def drop_database(name: str) -> None:
    with admin_engine().connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def write_files(root: Path, indexes: list[int]) -> None:
    if root.exists():
        shutil.rmtree(root)
    for d in range(256):
        (root / f"{d:02x}").mkdir(parents=True)
    for i in indexes:
        (root / storage_key(i)).write_bytes(FILE_BYTES)


def time_seed_delete(template: str) -> tuple[float, int]:
    name = copy_database(template)
    try:
        engine = sa.create_engine(database_url(name))
        with engine.begin() as connection:
            started = time.perf_counter()
            deleted = connection.execute(sa.text(SEED_DELETE), {"now": NOW}).rowcount
        elapsed = time.perf_counter() - started
        engine.dispose()
        return elapsed, deleted
    finally:
        drop_database(name)


def time_unlink_loop(root: Path, indexes: list[int]) -> float:
    write_files(root, indexes)
    paths = [str(root / storage_key(i)) for i in indexes]
    started = time.perf_counter()
    for path in paths:
        os.unlink(path)
    return time.perf_counter() - started


JOB_CHILD = """
import datetime as dt, json, resource, sys, time
import sqlalchemy as sa
from jobs_orchestration.db.engine import create_db_engine
from jobs_orchestration.snapshots.cleanup import CleanupOptions, run_cleanup
from jobs_orchestration.snapshots.store import LocalFolderStore
url, root, rows, batch, workers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
engine = create_db_engine(url)
options = CleanupOptions(batch_size=batch, delete_workers=workers, max_deletions=rows, max_batches=10**6,
                         time_budget_seconds=10**6)
started = time.perf_counter()
report = run_cleanup(engine, LocalFolderStore(root), options, now=dt.datetime(2026, 11, 23, 3, 0, tzinfo=dt.UTC))
elapsed = time.perf_counter() - started
# VmHWM is this process's own peak; ru_maxrss would also count the parent's, which Linux carries
# over the fork and exec that started this child.
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"seconds": elapsed, "deleted": report.deleted_count, "errors": report.error_count,
                  "peak_rss_mb": peak_kb / 1024,
                  "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def time_whole_job(
    template: str, root: Path, indexes: list[int], rows: int, batch: int, workers: int
) -> dict:
    write_files(root, indexes)
    name = copy_database(template)
    try:
        output = subprocess.run(
            [
                sys.executable,
                "-c",
                JOB_CHILD,
                database_url(name),
                str(root),
                str(rows),
                str(batch),
                str(workers),
            ],
            cwd=REPOSITORY_ROOT,
            env={**os.environ, "PYTHONPATH": str(REPOSITORY_ROOT)},
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return json.loads(output.strip().splitlines()[-1])
    finally:
        drop_database(name)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="snapshot rows to seed")
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=4, help="parallel file deletes in the job")
    args = parser.parse_args()

    template = f"snapshot_bench_{os.getpid()}"
    work = Path(tempfile.mkdtemp(prefix="snapshot_bench_"))
    try:
        started = time.perf_counter()
        seed_template(template, args.rows)
        indexes = expired_indexes(args.rows)
        print(
            f"seeded {args.rows:,} rows ({len(indexes):,} expired, unreferenced) in "
            f"{time.perf_counter() - started:.1f} s"
        )

        a_seconds, a_deleted = time_seed_delete(template)
        b_seconds = time_unlink_loop(work / "files", indexes)
        job = time_whole_job(template, work / "files", indexes, args.rows, args.batch_size, args.workers)
        assert a_deleted == len(indexes) == job["deleted"], (a_deleted, len(indexes), job)
        assert job["errors"] == 0 and not any((work / "files").rglob("*.pdf"))

        floor = a_seconds + b_seconds
        print(f"(a) bare SQL DELETE        {a_seconds:8.2f} s  {a_deleted / a_seconds:12,.0f} rows/s")
        print(f"(b) unlink loop            {b_seconds:8.2f} s  {len(indexes) / b_seconds:12,.0f} files/s")
        print(
            f"(c) whole job              {job['seconds']:8.2f} s  {job['deleted'] / job['seconds']:12,.0f} rows/s"
            f"  (batch {args.batch_size}, {args.workers} delete workers)"
        )
        print(f"c/(a+b) = {job['seconds'] / floor:.2f}   (target <= 1.5)")
        print(
            f"peak RSS of the job: {job['peak_rss_mb']:.0f} MB   (target <= 300 MB; ru_maxrss, "
            f"which includes the parent's peak, says {job['ru_maxrss_mb']:.0f} MB)"
        )
    finally:
        drop_database(template)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
