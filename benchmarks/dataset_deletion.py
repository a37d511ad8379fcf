"""Deletion benchmark on PostgreSQL and the moto server.

Dataset: seeds a DELETING dataset of 100,000 files over 5,000 packages in two buckets (rows through
COPY, objects written straight into moto's in-process backend; the code under test still talks HTTP).
A bare DeleteObjects loop (1,000 keys a call, `--workers` calls in flight, nothing else) deletes exactly
those keys, and the code `delete_dataset_job` runs deletes the dataset with the same number of workers
(the objects written again in between), `--rounds` times on fresh datasets, alternating which goes first;
the median of the rounds' ratios is printed. Each runs in a fresh process, so its peak memory is its own.
Prints the DeleteObjects calls against the minimum ceil(objects/1000) per bucket, times, objects per
second, the job's rate as a fraction of the bare loop's (the ceiling: the job also reads and removes
the rows), and peak RSS at each scale (memory must not grow with the dataset).

Per-object baseline: DeleteObject one key a call with the same `--workers` threads, on a sample of
`--per-object-sample` keys (10,000 by default: on moto the full 100,000 take minutes), with a bare
DeleteObjects loop over the same sample beside it.

Many small deletions: 100 one-file packages in one `delete_package_job` run (`--packages`), deleted
before as the op used to (`delete_package` per request, a pipeline each) and after as it does now
(`delete_packages`: one shared pipeline and one pass over the rows). Prints S3 calls (counted with
botocore's `before-call` event hook), time, peak RSS and the load average before and after each.

    .venv/bin/python benchmarks/dataset_deletion.py                             # scales 1.0 and 0.1
    .venv/bin/python benchmarks/dataset_deletion.py --scales 0.05 --rounds 1    # a quick run
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
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
PER_OBJECT_SAMPLE = 10_000
SMALL_PACKAGES = 100
SECOND_BUCKET = "platform-datasets-eu"
BUCKET_SHARE = {DATASET_BUCKET: 0.6, SECOND_BUCKET: 0.4}
CREATED = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
MOTO_ACCOUNT = "123456789012"


def moto_backend():
    from moto.s3.models import s3_backends

    return s3_backends[MOTO_ACCOUNT]["global"]


def add_organization_and_dataset(
    connection: sa.Connection, number: int, name: str, *, dataset_state: str
) -> None:
    """Organization `number` and its dataset `number`."""
    connection.execute(
        sa.insert(Organization).values(id=number, node_id=f"N:organization:{number}", name=f"{name} {number}")
    )
    connection.execute(
        sa.insert(Dataset).values(
            id=number, node_id=f"N:dataset:{number}", organization_id=number, name=name, state=dataset_state
        )
    )


def seed(url: str, number: int, files: int, packages: int) -> tuple[int, int, dict[str, int]]:
    """One organization with one DELETING dataset of `packages` packages and `files` files."""
    engine = sa.create_engine(url)
    backend = moto_backend()
    base = number * 10_000_000
    with engine.begin() as connection:
        add_organization_and_dataset(connection, number, "bench", dataset_state="DELETING")
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

    def rows():
        for index, (bucket, key) in enumerate(dataset_objects(number, files, packages)):
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


def dataset_objects(number: int, files: int, packages: int):
    """(bucket, key) of every object of the benchmark's dataset `number`, in the order of its file rows."""
    cut = int(files * BUCKET_SHARE[DATASET_BUCKET])
    for index in range(files):
        bucket = DATASET_BUCKET if index < cut else SECOND_BUCKET
        yield bucket, f"d{number}/p{index % packages}/f{index}.bin"


def seed_small_packages(url: str, number: int, count: int) -> tuple[int, list[int]]:
    """One organization with `count` DELETING packages of one file each; returns it and the packages."""
    engine = sa.create_engine(url)
    backend = moto_backend()
    base = number * 10_000_000
    with engine.begin() as connection:
        add_organization_and_dataset(connection, number, "small", dataset_state="READY")
        connection.execute(
            sa.insert(Package),
            [
                {
                    "id": base + index,
                    "node_id": f"N:package:{base + index}",
                    "organization_id": number,
                    "dataset_id": number,
                    "name": f"p{index}",
                    "package_type": "PDF",
                    "state": "DELETING",
                    "created_at": CREATED,
                    "updated_at": CREATED,
                }
                for index in range(count)
            ],
        )
        files = []
        for index in range(count):
            key = f"small{number}/p{index}/scan.pdf"
            backend.put_object(DATASET_BUCKET, key, b"x" * 64)
            files.append(
                {
                    "package_id": base + index,
                    "name": "scan.pdf",
                    "s3_bucket": DATASET_BUCKET,
                    "s3_key": key,
                    "size": 64,
                    "object_type": "source",
                    "is_prefix": False,
                    "created_at": CREATED,
                }
            )
        connection.execute(sa.insert(File), files)
    engine.dispose()
    return number, [base + index for index in range(count)]


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


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child_delete(url: str, endpoint: str, dataset_id: int, organization_id: int, workers: int) -> None:
    from jobs_orchestration.db.engine import create_db_engine
    from jobs_orchestration.deletion import pipeline, rows, service
    from jobs_orchestration.deletion.service import DeletionStores, delete_dataset

    phases: dict[str, float] = {}

    def timed(owner, name: str, phase: str) -> None:
        real = getattr(owner, name)

        def run(*args, **kwargs):
            started = time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                phases[phase] = phases.get(phase, 0.0) + time.perf_counter() - started

        setattr(owner, name, run)

    timed(pipeline.DeletionPipeline, "drain", "waiting for the last batches")
    timed(service, "_close_pages", "closing pass")
    timed(rows, "remaining_in_scope", "counting what remains")
    timed(rows, "remove_dataset", "removing the dataset's rows")
    client = s3_client(endpoint, workers)
    calls: dict[str, list[int]] = {}

    def note(params, **_kwargs):
        calls.setdefault(params["Bucket"], []).append(len(params["Delete"]["Objects"]))

    client.meta.events.register("before-parameter-build.s3.DeleteObjects", note)
    engine = create_db_engine(url)
    rss_before = peak_rss_mb()
    load_before = os.getloadavg()
    cpu_before = cpu_seconds()
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
                "phases": phases,
                "cpu_seconds": cpu_seconds() - cpu_before,
                "rss_before_mb": rss_before,
                "peak_rss_mb": peak_rss_mb(),
                "load": [load_before[0], os.getloadavg()[0]],
            }
        )
    )


def child_bare_loop(endpoint: str, keys_file: str, workers: int, per_object: bool) -> None:
    """Delete the (bucket, key) pairs listed in `keys_file` with nothing but S3 calls on `workers`
    threads: DeleteObjects 1,000 keys a call, or DeleteObject one key a call."""
    from concurrent.futures import ThreadPoolExecutor

    client = s3_client(endpoint, workers)
    by_bucket: dict[str, list[str]] = {}
    with open(keys_file) as listing:
        for line in listing:
            bucket, key = line.rstrip("\n").split("\t", 1)
            by_bucket.setdefault(bucket, []).append(key)
    objects = sum(len(keys) for keys in by_bucket.values())
    errors = 0

    def delete_batch(bucket: str, keys: list[str]) -> int:
        response = client.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True}
        )
        return len(response.get("Errors", []))

    def delete_one(bucket: str, key: str) -> int:
        client.delete_object(Bucket=bucket, Key=key)
        return 0

    load_before = os.getloadavg()
    cpu_before = cpu_seconds()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        if per_object:
            futures = [
                pool.submit(delete_one, bucket, key) for bucket, keys in by_bucket.items() for key in keys
            ]
        else:
            futures = [
                pool.submit(delete_batch, bucket, keys[start : start + 1000])
                for bucket, keys in by_bucket.items()
                for start in range(0, len(keys), 1000)
            ]
        errors = sum(future.result() for future in futures)
    elapsed = time.perf_counter() - started
    print(
        json.dumps(
            {
                "objects": objects,
                "errors": errors,
                "seconds": elapsed,
                "cpu_seconds": cpu_seconds() - cpu_before,
                "peak_rss_mb": peak_rss_mb(),
                "load": [load_before[0], os.getloadavg()[0]],
            }
        )
    )


def child_small_packages(
    url: str, endpoint: str, organization_id: int, first: int, count: int, workers: int, how: str
) -> None:
    """Delete `count` packages from `first` on, as one run's batch: one pipeline per request (`before`)
    or the shared pipeline (`after`). Counts every S3 call with botocore's event hook."""
    from collections import Counter

    from jobs_orchestration.db.engine import create_db_engine
    from jobs_orchestration.deletion.service import DeletionStores, delete_package, delete_packages

    client = s3_client(endpoint, workers)
    calls: Counter[str] = Counter()
    client.meta.events.register(
        "before-call.s3.*", lambda event_name, **_kwargs: calls.update([event_name.rsplit(".", 1)[-1]])
    )
    engine = create_db_engine(url)
    stores = DeletionStores(engine, client, TIMESERIES_BUCKET, workers)
    requests = [(package_id, organization_id) for package_id in range(first, first + count)]
    rss_before = peak_rss_mb()
    load_before = os.getloadavg()
    started = time.perf_counter()
    if how == "before":
        results = [delete_package(stores, *request) for request in requests]
    else:
        results = delete_packages(stores, requests)
    elapsed = time.perf_counter() - started
    outcomes = sorted({getattr(result, "outcome", result).__str__() for result in results})
    print(
        json.dumps(
            {
                "outcomes": outcomes,
                "seconds": elapsed,
                "calls": dict(calls),
                "rss_before_mb": rss_before,
                "peak_rss_mb": peak_rss_mb(),
                "load": [load_before[0], os.getloadavg()[0]],
            }
        )
    )


def write_keys(path: Path, objects) -> None:
    with open(path, "w") as listing:
        for bucket, key in objects:
            listing.write(f"{bucket}\t{key}\n")


def load_note(result: dict) -> str:
    return f"load average {result['load'][0]:.2f} before, {result['load'][1]:.2f} after"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scales", default="1.0,0.1", help="comma-separated fractions of 100,000 files / 5,000 packages"
    )
    parser.add_argument(
        "--workers", type=int, default=8, help="S3 calls in flight (the job's parallel_deletes, 8 by default)"
    )
    parser.add_argument(
        "--per-object-sample", type=int, default=PER_OBJECT_SAMPLE, help="keys deleted one a call"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="bare loop / job pairs per scale (the median ratio is printed)"
    )
    parser.add_argument("--packages", type=int, default=SMALL_PACKAGES, help="one-file packages in one run")
    arguments = parser.parse_args()
    os.environ.update(LOCAL_CREDENTIALS)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
    workers = str(arguments.workers)
    print(f"load average at start: {os.getloadavg()[0]:.2f} (2-core machine); {arguments.workers} workers")

    server, endpoint = start_moto_server()
    try:
        provision(endpoint)
        s3_client(endpoint, 1).create_bucket(Bucket=SECOND_BUCKET)
        with temporary_database("jobs_bench") as url, tempfile.TemporaryDirectory() as scratch:
            upgrade(url, ["platform"])
            backend = moto_backend()
            keys_file = Path(scratch) / "keys.tsv"
            number = 0

            # Per-object baseline: one key a call, and a bare DeleteObjects loop over the same sample.
            sample = [
                (DATASET_BUCKET, f"baseline/{index}.bin") for index in range(arguments.per_object_sample)
            ]
            write_keys(keys_file, sample)
            rates = {}
            for name, per_object in (
                ("DeleteObject, one key a call", "1"),
                ("DeleteObjects, 1,000 a call", "0"),
            ):
                for bucket, key in sample:
                    backend.put_object(bucket, key, b"x" * 64)
                result = run_child("bare", endpoint, str(keys_file), workers, per_object)
                rates[per_object] = result["objects"] / result["seconds"]
                print(
                    f"sample of {result['objects']:,} objects, {name}, {arguments.workers} threads: "
                    f"{result['seconds']:.2f} s = {rates[per_object]:,.0f} objects/s ({load_note(result)})"
                )
            print(f"  DeleteObjects over DeleteObject on the sample: {rates['0'] / rates['1']:.1f}x")

            peaks = {}
            for scale in (float(s) for s in arguments.scales.split(",")):
                files, packages = max(1, round(FILES * scale)), max(1, round(PACKAGES * scale))
                ratios = []
                for round_number in range(arguments.rounds):
                    number += 1
                    # Alternate which goes first, so a change of load during the round favours neither.
                    job_first = round_number % 2 == 1
                    started = time.perf_counter()
                    dataset_id, organization_id, per_bucket = seed(url, number, files, packages)
                    seeded = time.perf_counter() - started
                    write_keys(keys_file, dataset_objects(number, files, packages))
                    measured = {}
                    for which in ("job", "bare") if job_first else ("bare", "job"):
                        if measured:  # the other one deleted them: the same objects again
                            for bucket, key in dataset_objects(number, files, packages):
                                backend.put_object(bucket, key, b"x" * 64)
                        if which == "bare":
                            measured[which] = run_child("bare", endpoint, str(keys_file), workers, "0")
                        else:
                            measured[which] = run_child(
                                "delete", url, endpoint, str(dataset_id), str(organization_id), workers
                            )
                    bare, result = measured["bare"], measured["job"]
                    left = sum(
                        1
                        for bucket in per_bucket
                        for key in backend.get_bucket(bucket).keys
                        if key.startswith(f"d{number}/")
                    )
                    rate = result["objects"] / result["seconds"]
                    bare_rate = bare["objects"] / bare["seconds"]
                    ratios.append(rate / bare_rate)
                    peaks[scale] = max(peaks.get(scale, 0.0), result["peak_rss_mb"])
                    print(
                        f"\nscale {scale}, round {round_number + 1} ({'job' if job_first else 'bare loop'} "
                        f"first): {files:,} files over {packages:,} packages (seeded in {seeded:.1f} s), "
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
                        f"  bare DeleteObjects loop over the same keys, {arguments.workers} threads: "
                        f"{bare['seconds']:.2f} s = {bare_rate:,.0f} objects/s, its CPU "
                        f"{bare['cpu_seconds']:.1f} s ({load_note(bare)})"
                    )
                    print(
                        f"  the job: deleted {result['objects']:,} objects, {result['files']:,} file rows, "
                        f"{result['packages']:,} packages in {result['seconds']:.2f} s = {rate:,.0f} objects/s, "
                        f"its CPU {result['cpu_seconds']:.1f} s ({load_note(result)})"
                    )
                    phases = result["phases"]
                    walk = result["seconds"] - sum(phases.values())
                    print(
                        f"  the job's time: walking the rows and deleting {walk:.2f} s, "
                        + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in phases.items())
                    )
                    print(
                        f"  job / bare DeleteObjects loop: {rate / bare_rate:.2f} (goal >= 0.8); "
                        f"job / DeleteObject per key (sample rate): {rate / rates['1']:.1f}x"
                    )
                    print(
                        f"  peak RSS of the deleting process {result['peak_rss_mb']:.0f} MB "
                        f"(after imports, before deleting: {result['rss_before_mb']:.0f} MB); "
                        f"of the bare loop {bare['peak_rss_mb']:.0f} MB"
                    )
                if len(ratios) > 1:
                    print(
                        f"\nscale {scale}: job / bare DeleteObjects loop over {len(ratios)} rounds: median "
                        f"{statistics.median(ratios):.2f} (each: {', '.join(f'{r:.2f}' for r in ratios)})"
                    )
            if len(peaks) > 1:
                largest, smallest = max(peaks), min(peaks)
                print(
                    f"\npeak RSS at scale {largest}: {peaks[largest]:.0f} MB, at scale {smallest}: "
                    f"{peaks[smallest]:.0f} MB (ratio {peaks[largest] / peaks[smallest]:.2f})"
                )

            print(f"\n{arguments.packages} one-file packages in one run:")
            measured = {}
            for how in ("before", "after"):
                number += 1
                organization_id, package_ids = seed_small_packages(url, number, arguments.packages)
                result = run_child(
                    "small",
                    url,
                    endpoint,
                    str(organization_id),
                    str(package_ids[0]),
                    str(arguments.packages),
                    workers,
                    how,
                )
                measured[how] = result
                left = sum(
                    1 for key in backend.get_bucket(DATASET_BUCKET).keys if key.startswith(f"small{number}/")
                )
                label = "one pipeline per request" if how == "before" else "one shared pipeline"
                calls = ", ".join(f"{name} {count}" for name, count in sorted(result["calls"].items()))
                print(
                    f"  {how} ({label}): outcomes {result['outcomes']}, objects left {left}, "
                    f"S3 calls {sum(result['calls'].values())} ({calls}), {result['seconds']:.2f} s, "
                    f"peak RSS {result['peak_rss_mb']:.0f} MB ({load_note(result)})"
                )
            before, after = measured["before"], measured["after"]
            print(
                f"  after / before: S3 calls {sum(before['calls'].values()) / sum(after['calls'].values()):.0f}x "
                f"fewer, {before['seconds'] / after['seconds']:.1f}x faster"
            )
    finally:
        server.stop()
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "delete":
        child_delete(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
    elif len(sys.argv) > 1 and sys.argv[1] == "bare":
        child_bare_loop(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] == "1")
    elif len(sys.argv) > 1 and sys.argv[1] == "small":
        child_small_packages(
            sys.argv[2],
            sys.argv[3],
            int(sys.argv[4]),
            int(sys.argv[5]),
            int(sys.argv[6]),
            int(sys.argv[7]),
            sys.argv[8],
        )
    else:
        main()
