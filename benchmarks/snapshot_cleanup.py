"""Snapshot cleanup benchmark on PostgreSQL, with the files in a local folder, S3 (moto) or Azure (Azurite).

Seeds N snapshot rows (60% expired and unreferenced) once into a template database, then times runs,
each on a fresh copy (CREATE DATABASE ... TEMPLATE) with freshly written files:
  --store file (default): the floor is (a) the original job's bare SQL DELETE (no files touched) plus
      (b) a tight loop that only unlinks the same files, folder by folder; target c/(a+b) <= 1.2.
  --store s3: the floor is a bare DeleteObjects loop (1,000 keys a call, on `--workers` threads) over
      the same keys on a moto server in this process; target floor/job >= 0.8 (the job's throughput
      against the loop's).
  --store azure: the floor is per-blob deletes (one request a blob, on `--workers` threads) on Azurite
      (`make azurite`); the job uses the Blob Batch API, so floor/job is its speed-up.
and (c) the whole cleanup (count, mark, delete files on `--workers` threads, record purged, look for
old tombstones), in a child process whose own peak RSS (VmHWM) is measured (target <= 300 MB, flat as N
grows). All runs use the schema the migrations build (snapshot_files with a fillfactor of 50, so (a)
deletes from the same pages the job updates). The machine's other load moves the figures: the load
average is printed before and after; run it twice.

    PYTHONPATH=. .venv/bin/python benchmarks/snapshot_cleanup.py --rows 100000 --workers 2
    PYTHONPATH=. .venv/bin/python benchmarks/snapshot_cleanup.py --rows 1000000 --workers 2
    PYTHONPATH=. .venv/bin/python benchmarks/snapshot_cleanup.py --rows 100000 --workers 2 --store s3
    PYTHONPATH=. .venv/bin/python benchmarks/snapshot_cleanup.py --rows 5000 --workers 2 --store azure
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY_ROOT))

from jobs_orchestration.db.bulk import bulk_insert  # noqa: E402
from jobs_orchestration.db.email_parser import SnapshotType  # noqa: E402
from jobs_orchestration.db.migrate import upgrade  # noqa: E402
from jobs_orchestration.devstack.aws import LOCAL_CREDENTIALS, start_moto_server  # noqa: E402
from jobs_orchestration.snapshots.retention import order_attachments, snapshot_files  # noqa: E402
from jobs_orchestration_tests.support.postgres import SERVER_URL  # noqa: E402

NOW = dt.datetime(2026, 11, 23, 3, 0, tzinfo=dt.UTC)
S3_BUCKET = "snapshot-bench"
PREFIX = "snapshots"
MOTO_ACCOUNT = "123456789012"
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
    # On disk before anything deletes them, as a week-old snapshot is: a file unlinked before its first
    # write-back costs the file system less, and the loop (b) deletes sooner after writing than (c).
    os.sync()


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
    # Folder by folder, the order that costs a file system least (the job groups a batch by folder too).
    paths = sorted(str(root / storage_key(i)) for i in indexes)
    started = time.perf_counter()
    for path in paths:
        os.unlink(path)
    return time.perf_counter() - started


JOB_CHILD = """
import datetime as dt, json, resource, sys, time
import sqlalchemy as sa
from jobs_orchestration.aws.clients import aws_client
from jobs_orchestration.db.engine import create_db_engine
from jobs_orchestration.snapshots.cleanup import CleanupOptions, run_cleanup
from jobs_orchestration.snapshots.store import open_snapshot_store
url, store_url, rows, batch, workers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
engine = create_db_engine(url)
store = open_snapshot_store(store_url, s3_client_factory=lambda: aws_client("s3"))
options = CleanupOptions(batch_size=batch, delete_workers=workers, max_deletions=rows, max_batches=10**6,
                         time_budget_seconds=10**6)
started = time.perf_counter()
report = run_cleanup(engine, store, options, now=dt.datetime(2026, 11, 23, 3, 0, tzinfo=dt.UTC))
elapsed = time.perf_counter() - started
# VmHWM is this process's own peak; ru_maxrss would also count the parent's, which Linux carries
# over the fork and exec that started this child.
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"seconds": elapsed, "deleted": report.deleted_count, "errors": report.error_count,
                  "peak_rss_mb": peak_kb / 1024,
                  "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

FLOOR_CHILD = """
import json, os, sys, time
from concurrent.futures import ThreadPoolExecutor
store, workers, keys = sys.argv[1], int(sys.argv[2]), sys.stdin.read().split()
if store == "s3":
    from jobs_orchestration.aws.clients import aws_client
    client = aws_client("s3")
    chunks = [keys[i : i + 1000] for i in range(0, len(keys), 1000)]
    def delete(chunk):
        response = client.delete_objects(
            Bucket=sys.argv[3], Delete={"Objects": [{"Key": key} for key in chunk], "Quiet": True}
        )
        assert not response.get("Errors"), response["Errors"][:3]
else:
    from jobs_orchestration.snapshots.store import azure_container_client
    container = azure_container_client(os.environ["AZURE_STORAGE_CONNECTION_STRING"], sys.argv[3])
    chunks = [keys[i : i + 500] for i in range(0, len(keys), 500)]
    def delete(chunk):
        for key in chunk:
            container.delete_blob(key)
started = time.perf_counter()
with ThreadPoolExecutor(workers) as pool:
    list(pool.map(delete, chunks))
print(json.dumps({"seconds": time.perf_counter() - started}))
"""


def run_child(code: str, arguments: list[str], environment: dict[str, str], stdin: str = "") -> dict:
    completed = subprocess.run(
        [sys.executable, "-c", code, *arguments],
        cwd=REPOSITORY_ROOT,
        env={**os.environ, **environment, "PYTHONPATH": str(REPOSITORY_ROOT)},
        input=stdin,
        capture_output=True,
        text=True,
    )
    if completed.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def time_whole_job(
    template: str, store_url: str, environment: dict[str, str], rows: int, batch: int, workers: int
) -> dict:
    name = copy_database(template)
    try:
        return run_child(
            JOB_CHILD,
            [database_url(name), store_url, str(rows), str(batch), str(workers)],
            environment,
        )
    finally:
        drop_database(name)


def object_keys(indexes: list[int]) -> list[str]:
    return [f"{PREFIX}/{storage_key(i)}" for i in indexes]


def put_s3_objects(keys: list[str]) -> None:
    """Straight into moto's in-process backend: the code measured still talks HTTP."""
    from moto.s3.models import s3_backends

    backend = s3_backends[MOTO_ACCOUNT]["global"]
    for key in keys:
        backend.put_object(S3_BUCKET, key, FILE_BYTES)


def s3_object_count() -> int:
    from moto.s3.models import s3_backends

    return len(s3_backends[MOTO_ACCOUNT]["global"].get_bucket(S3_BUCKET).keys)


def put_azure_blobs(container, keys: list[str]) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: container.upload_blob(key, FILE_BYTES, overwrite=True), keys))


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="snapshot rows to seed")
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=4, help="parallel file deletes in the job")
    parser.add_argument("--store", choices=("file", "s3", "azure"), default="file")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="file and s3: the floor and the job run in turn; the quickest count",
    )
    args = parser.parse_args()
    # Stopped by `timeout` or a person (SIGTERM): unwind as on an error, so Azurite, moto and the
    # template database are stopped and removed instead of outliving the benchmark.
    signal.signal(signal.SIGTERM, lambda _signal, _frame: sys.exit(143))

    print(f"load average before: {load_average()}")
    template = f"snapshot_bench_{os.getpid()}"
    work = Path(tempfile.mkdtemp(prefix="snapshot_bench_"))
    try:
        with ExitStack() as stack:
            started = time.perf_counter()
            seed_template(template, args.rows)
            indexes = expired_indexes(args.rows)
            print(
                f"seeded {args.rows:,} rows ({len(indexes):,} expired, unreferenced) in "
                f"{time.perf_counter() - started:.1f} s"
            )
            run = {"file": run_on_files, "s3": run_on_s3, "azure": run_on_azure}[args.store]
            job = run(stack, args, template, work, indexes)
        print(
            f"peak RSS of the job: {job['peak_rss_mb']:.0f} MB   (target <= 300 MB; ru_maxrss, "
            f"which includes the parent's peak, says {job['ru_maxrss_mb']:.0f} MB)"
        )
    finally:
        drop_database(template)
        shutil.rmtree(work, ignore_errors=True)
        print(f"load average after: {load_average()}")


def print_job(job: dict, args: argparse.Namespace) -> None:
    print(
        f"(c) whole job              {job['seconds']:8.2f} s  {job['deleted'] / job['seconds']:12,.0f} rows/s"
        f"  (batch {args.batch_size}, {args.workers} delete workers)"
    )


def run_on_files(stack: ExitStack, args: argparse.Namespace, template: str, work: Path, indexes) -> dict:
    # (a), (b) and (c) take turns `--repeat` times and the quickest of each counts: on a shared machine
    # the other load only ever adds time.
    a_runs, b_runs, jobs = [], [], []
    store_url = (work / "files").resolve().as_uri()
    for _ in range(args.repeat):
        a_seconds, a_deleted = time_seed_delete(template)
        a_runs.append(a_seconds)
        b_runs.append(time_unlink_loop(work / "files", indexes))
        write_files(work / "files", indexes)
        job = time_whole_job(template, store_url, {}, args.rows, args.batch_size, args.workers)
        assert a_deleted == len(indexes) == job["deleted"], (a_deleted, len(indexes), job)
        assert job["errors"] == 0 and not any((work / "files").rglob("*.pdf"))
        jobs.append(job)
        print(f"  run {len(jobs)}: (a) {a_seconds:.2f} s  (b) {b_runs[-1]:.2f} s  (c) {job['seconds']:.2f} s")
    a_seconds, b_seconds = min(a_runs), min(b_runs)
    job = {
        **min(jobs, key=lambda run: run["seconds"]),
        "peak_rss_mb": max(run["peak_rss_mb"] for run in jobs),
    }
    floor = a_seconds + b_seconds
    print(f"(a) bare SQL DELETE        {a_seconds:8.2f} s  {a_deleted / a_seconds:12,.0f} rows/s")
    print(f"(b) unlink loop            {b_seconds:8.2f} s  {len(indexes) / b_seconds:12,.0f} files/s")
    print_job(job, args)
    print(f"c/(a+b) = {job['seconds'] / floor:.2f}   (target <= 1.2)")
    return job


def run_on_s3(stack: ExitStack, args: argparse.Namespace, template: str, work: Path, indexes) -> dict:
    server, endpoint = start_moto_server()
    stack.callback(server.stop)
    environment = {**LOCAL_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint}
    os.environ.update(environment)
    from jobs_orchestration.aws.clients import aws_client

    aws_client("s3").create_bucket(Bucket=S3_BUCKET)
    keys = object_keys(indexes)
    floors, jobs = [], []
    for _ in range(args.repeat):
        put_s3_objects(keys)
        floors.append(
            run_child(FLOOR_CHILD, ["s3", str(args.workers), S3_BUCKET], environment, "\n".join(keys))
        )
        assert s3_object_count() == 0
        put_s3_objects(keys)
        job = time_whole_job(
            template, f"s3://{S3_BUCKET}/{PREFIX}", environment, args.rows, args.batch_size, args.workers
        )
        assert job["deleted"] == len(indexes) and job["errors"] == 0 and s3_object_count() == 0, job
        jobs.append(job)
        print(f"  run {len(jobs)}: (f) {floors[-1]['seconds']:.2f} s  (c) {job['seconds']:.2f} s")
    floor = min(floors, key=lambda run: run["seconds"])
    job = {
        **min(jobs, key=lambda run: run["seconds"]),
        "peak_rss_mb": max(run["peak_rss_mb"] for run in jobs),
    }
    print(
        f"(f) bare DeleteObjects loop {floor['seconds']:7.2f} s  {len(keys) / floor['seconds']:12,.0f} "
        f"objects/s  (1,000 keys a call, {args.workers} threads, moto)"
    )
    print_job(job, args)
    print(f"job throughput / loop's = {floor['seconds'] / job['seconds']:.2f}   (target >= 0.8)")
    return job


def run_on_azure(stack: ExitStack, args: argparse.Namespace, template: str, work: Path, indexes) -> dict:
    from jobs_orchestration.snapshots.store import azure_container_client
    from jobs_orchestration_tests.support.azurite import running_azurite

    # In memory: Azurite's on-disk store would time this machine's disk rather than the requests.
    connection_string = stack.enter_context(running_azurite(None))
    environment = {"AZURE_STORAGE_CONNECTION_STRING": connection_string}
    container = azure_container_client(connection_string, S3_BUCKET)
    container.create_container()
    keys = object_keys(indexes)
    started = time.perf_counter()
    put_azure_blobs(container, keys)
    print(f"uploaded {len(keys):,} blobs to Azurite in {time.perf_counter() - started:.1f} s")
    floor = run_child(FLOOR_CHILD, ["azure", str(args.workers), S3_BUCKET], environment, "\n".join(keys))
    assert next(iter(container.list_blob_names()), None) is None
    put_azure_blobs(container, keys)
    job = time_whole_job(
        template, f"azure://{S3_BUCKET}/{PREFIX}", environment, args.rows, args.batch_size, args.workers
    )
    assert job["deleted"] == len(indexes) and job["errors"] == 0, job
    assert next(iter(container.list_blob_names()), None) is None
    print(
        f"(f) per-blob deletes       {floor['seconds']:8.2f} s  {len(keys) / floor['seconds']:12,.0f} "
        f"blobs/s  ({args.workers} threads, Azurite)"
    )
    print_job(job, args)
    print(
        f"job (Blob Batch, 256 a request) against per-blob deletes: {floor['seconds'] / job['seconds']:.2f}x"
    )
    return job


if __name__ == "__main__":
    main()
