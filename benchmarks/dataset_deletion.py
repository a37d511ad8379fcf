"""Dataset deletion benchmark on PostgreSQL and the moto server.

Seeds a DELETING dataset of 100,000 files over 5,000 packages (rows through COPY, objects written
straight into moto's in-process backend; the code under test still talks HTTP), then deletes it with
the code `delete_dataset_job` runs, in a fresh process so its peak memory is its own. Prints the
DeleteObjects calls against the minimum ceil(objects/1000) per bucket, time, objects per second, the
per-object DeleteObject rate on 2,000 objects measured in the same run (also in a fresh process), the
speed-up, and peak RSS at each scale (memory must not grow with the dataset).

    /work/main/.venv/bin/python benchmarks/dataset_deletion.py                 # scales 1.0 and 0.1
    /work/main/.venv/bin/python benchmarks/dataset_deletion.py --scales 0.05   # a quick run
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jobs_orchestration.db.bulk import bulk_insert  # noqa: E402
from jobs_orchestration.db.migrate import upgrade  # noqa: E402
from jobs_orchestration.db.platform import Dataset, File, Organization, Package  # noqa: E402
from jobs_orchestration.devstack.aws import (  # noqa: E402
    DATASET_BUCKET,
    LOCAL_CREDENTIALS,
    TIMESERIES_BUCKET,
    provision,
    start_moto_server,
)
from jobs_orchestration_tests.support.postgres import temporary_database  # noqa: E402

FILES = 100_000
PACKAGES = 5_000
BASELINE_OBJECTS = 2_000
SECOND_BUCKET = "platform-datasets-eu"
BUCKET_SHARE = {DATASET_BUCKET: 0.6, SECOND_BUCKET: 0.4}
CREATED = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
MOTO_ACCOUNT = "123456789012"


def moto_backend():
    from moto.s3.models import s3_backends

    return s3_backends[MOTO_ACCOUNT]["global"]


def seed(url: str, number: int, files: int, packages: int) -> tuple[int, int, dict[str, int]]:
    """One organization with one DELETING dataset of `packages` packages and `files` files."""
    engine = sa.create_engine(url)
    backend = moto_backend()
    base = number * 10_000_000
    with engine.begin() as connection:
        connection.execute(
            sa.insert(Organization).values(
                id=number, node_id=f"N:organization:{number}", name=f"bench {number}"
            )
        )
        connection.execute(
            sa.insert(Dataset).values(
                id=number,
                node_id=f"N:dataset:{number}",
                organization_id=number,
                name="bench",
                state="DELETING",
            )
        )
        bulk_insert(
            connection,
            Package.__table__,
            [
                "id",
                "node_id",
                "organization_id",
                "dataset_id",
                "name",
                "package_type",
                "state",
                "created_at",
                "updated_at",
            ],
            (
                (
                    base + index,
                    f"N:package:{base + index}",
                    number,
                    number,
                    f"p{index}",
                    "PDF",
                    "DELETING",
                    CREATED,
                    CREATED,
                )
                for index in range(packages)
            ),
        )
    per_bucket = {bucket: 0 for bucket in BUCKET_SHARE}
    cut = int(files * BUCKET_SHARE[DATASET_BUCKET])

    def rows():
        for index in range(files):
            bucket = DATASET_BUCKET if index < cut else SECOND_BUCKET
            key = f"d{number}/p{index % packages}/f{index}.bin"
            backend.put_object(bucket, key, b"x" * 64)
            per_bucket[bucket] += 1
            yield (base + index % packages, f"f{index}", bucket, key, 64, "source", False, CREATED)

    with engine.begin() as connection:
        bulk_insert(
            connection,
            File.__table__,
            ["package_id", "name", "s3_bucket", "s3_key", "size", "object_type", "is_prefix", "created_at"],
            rows(),
        )
    engine.dispose()
    return number, number, per_bucket


def run_child(*arguments: str) -> dict:
    environment = {**os.environ, **LOCAL_CREDENTIALS, "PYTHONPATH": str(ROOT)}
    completed = subprocess.run(
        [sys.executable, __file__, *arguments], cwd=ROOT, env=environment, capture_output=True, text=True
    )
    if completed.returncode != 0:
        raise SystemExit(f"child {arguments[0]} failed:\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def s3_client(endpoint: str, workers: int):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=LOCAL_CREDENTIALS["AWS_REGION"],
        config=Config(max_pool_connections=max(10, workers * 2), retries={"mode": "standard"}),
    )


def peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM belongs to the process's own address space; getrusage's
    ru_maxrss would carry over the parent's peak (the seeded moto server) across fork and exec."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_delete(url: str, endpoint: str, dataset_id: int, organization_id: int, workers: int) -> None:
    from jobs_orchestration.db.engine import create_db_engine
    from jobs_orchestration.deletion.service import DeletionStores, delete_dataset

    client = s3_client(endpoint, workers)
    calls: dict[str, list[int]] = {}
    real = client.delete_objects

    def counting(**kwargs):
        calls.setdefault(kwargs["Bucket"], []).append(len(kwargs["Delete"]["Objects"]))
        return real(**kwargs)

    client.delete_objects = counting
    engine = create_db_engine(url)
    rss_before = peak_rss_mb()
    started = time.perf_counter()
    report = delete_dataset(
        DeletionStores(engine, client, TIMESERIES_BUCKET, workers), dataset_id, organization_id
    )
    elapsed = time.perf_counter() - started
    print(
        json.dumps(
            {
                "outcome": report.outcome.value,
                "objects": report.objects_deleted,
                "files": report.files_deleted,
                "packages": report.packages_deleted,
                "seconds": elapsed,
                "calls": calls,
                "rss_before_mb": rss_before,
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


def child_baseline(endpoint: str, prefix: str, count: int) -> None:
    client = s3_client(endpoint, 1)
    started = time.perf_counter()
    for index in range(count):
        client.delete_object(Bucket=DATASET_BUCKET, Key=f"{prefix}/{index}.bin")
    print(json.dumps({"objects": count, "seconds": time.perf_counter() - started}))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scales", default="1.0,0.1", help="comma-separated fractions of 100,000 files / 5,000 packages"
    )
    parser.add_argument("--workers", type=int, default=8, help="DeleteObjects calls in flight")
    parser.add_argument("--baseline-objects", type=int, default=BASELINE_OBJECTS)
    arguments = parser.parse_args()
    os.environ.update(LOCAL_CREDENTIALS)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log

    server, endpoint = start_moto_server()
    try:
        provision(endpoint)
        s3_client(endpoint, 1).create_bucket(Bucket=SECOND_BUCKET)
        with temporary_database("jobs_bench") as url:
            upgrade(url, ["platform"])
            backend = moto_backend()
            for index in range(arguments.baseline_objects):
                backend.put_object(DATASET_BUCKET, f"baseline/{index}.bin", b"x" * 64)
            baseline = run_child("baseline", endpoint, "baseline", str(arguments.baseline_objects))
            baseline_rate = baseline["objects"] / baseline["seconds"]
            print(
                f"baseline: DeleteObject one key a call, {baseline['objects']:,} objects in "
                f"{baseline['seconds']:.2f} s = {baseline_rate:,.0f} objects/s"
            )
            peaks = {}
            for number, scale in enumerate((float(s) for s in arguments.scales.split(",")), start=1):
                files, packages = max(1, round(FILES * scale)), max(1, round(PACKAGES * scale))
                started = time.perf_counter()
                dataset_id, organization_id, per_bucket = seed(url, number, files, packages)
                seeded = time.perf_counter() - started
                result = run_child(
                    "delete", url, endpoint, str(dataset_id), str(organization_id), str(arguments.workers)
                )
                left = sum(
                    1
                    for bucket in per_bucket
                    for key in backend.get_bucket(bucket).keys
                    if key.startswith(f"d{number}/")
                )
                rate = result["objects"] / result["seconds"]
                peaks[scale] = result["peak_rss_mb"]
                print(
                    f"\nscale {scale}: {files:,} files over {packages:,} packages (seeded in {seeded:.1f} s), "
                    f"outcome {result['outcome']}, objects left in S3: {left}"
                )
                for bucket, count in per_bucket.items():
                    sizes = result["calls"].get(bucket, [])
                    minimum = math.ceil(count / 1000)
                    print(
                        f"  {bucket}: {count:,} objects, DeleteObjects calls {len(sizes)} "
                        f"(minimum {minimum}{', equal' if len(sizes) == minimum else ', MORE'}), "
                        f"largest call {max(sizes, default=0)} keys"
                    )
                print(
                    f"  deleted {result['objects']:,} objects, {result['files']:,} file rows, "
                    f"{result['packages']:,} packages in {result['seconds']:.2f} s = {rate:,.0f} objects/s; "
                    f"speed-up over DeleteObject {rate / baseline_rate:.1f}x"
                )
                print(
                    f"  peak RSS of the deleting process {result['peak_rss_mb']:.0f} MB "
                    f"(after imports, before deleting: {result['rss_before_mb']:.0f} MB)"
                )
            if len(peaks) > 1:
                largest, smallest = max(peaks), min(peaks)
                print(
                    f"\npeak RSS at scale {largest}: {peaks[largest]:.0f} MB, at scale {smallest}: "
                    f"{peaks[smallest]:.0f} MB (ratio {peaks[largest] / peaks[smallest]:.2f})"
                )
    finally:
        server.stop()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "delete":
        child_delete(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
    elif len(sys.argv) > 1 and sys.argv[1] == "baseline":
        child_baseline(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        main()
