"""Crash scenarios: the part of the system that does the work runs in a child process, is killed with
SIGKILL at a random moment, and is started again; afterwards every message's work is complete, nothing
is lost, nothing that had to stay is gone and nothing is left half-deleted. Each scenario returns a
tally row; `format_table` prints them. Shared by the test suite (a few crashes) and the long run."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from jobs_orchestration.db.email_parser import SnapshotType
from jobs_orchestration.db.platform import Dataset, DatasetAssetKind, Package
from jobs_orchestration.deletion.service import DeletionStores, delete_dataset
from jobs_orchestration.devstack.aws import DATASET_ASSETS_BUCKET, DATASET_BUCKET, TIMESERIES_BUCKET, LocalAws
from jobs_orchestration.devstack.stack import REPOSITORY_ROOT
from jobs_orchestration.snapshots.cleanup import CleanupOptions, run_cleanup
from jobs_orchestration.snapshots.retention import snapshot_files
from jobs_orchestration.snapshots.store import LocalFolderStore
from jobs_orchestration_tests.support import job_messages
from jobs_orchestration_tests.support.crash_workers import INTAKE_CURSOR_TABLE, INTAKE_RUNS_TABLE
from jobs_orchestration_tests.support.platform_data import PlatformData, keys_in
from jobs_orchestration_tests.support.queue import counts, send
from jobs_orchestration_tests.support.snapshots import add_attachment_row, add_order, add_snapshots

WORKER_TIMEOUT_SECONDS = 120
INTAKE_VISIBILITY_TIMEOUT_SECONDS = 2
"""The queue hides a message received by a tick that died this long before it comes back."""


@dataclass
class CrashTally:
    scenario: str
    crashes: int = 0
    """Kills that hit the worker while it was still working."""
    sent: int = 0
    completed: int = 0
    lost: int = 0
    duplicated: int = 0
    wrongly_deleted: int = 0
    half_deleted: int = 0
    problems: list[str] = field(default_factory=list)

    def add(self, other: CrashTally) -> None:
        for name in ("crashes", "sent", "completed", "lost", "duplicated", "wrongly_deleted", "half_deleted"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.problems += other.problems

    @property
    def sound(self) -> bool:
        return not (self.lost or self.duplicated or self.wrongly_deleted or self.half_deleted or self.problems)


COLUMNS = (
    ("scenario", "scenario"),
    ("crashes injected", "crashes"),
    ("messages sent", "sent"),
    ("messages completed", "completed"),
    ("lost", "lost"),
    ("duplicated side effects", "duplicated"),
    ("deleted but had to stay", "wrongly_deleted"),
    ("left half-deleted", "half_deleted"),
)


def progress(tally: CrashTally, round_number: int) -> None:
    print(f"{tally.scenario}: round {round_number + 1} done", file=sys.stderr, flush=True)


def format_table(tallies: list[CrashTally]) -> str:
    cells = [[str(getattr(tally, name)) for _, name in COLUMNS] for tally in tallies]
    widths = [max(len(title), *(len(row[i]) for row in cells)) for i, (title, _) in enumerate(COLUMNS)]
    lines = [" | ".join(title.ljust(width) for (title, _), width in zip(COLUMNS, widths, strict=True))]
    lines.append("-+-".join("-" * width for width in widths))
    lines += [" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


# -- the child process --------------------------------------------------------------------------------


class Worker:
    """A crash worker in a child process (see crash_workers)."""

    def __init__(self, kind: str, **arguments: object) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jobs_orchestration_tests.support.crash_workers", kind, json.dumps(arguments)],
            cwd=REPOSITORY_ROOT,
            env=_child_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline()
        if line.strip() != "started":
            self.process.kill()
            raise AssertionError(f"the {kind} worker did not start: {line}{self.process.stderr.read()}")

    def kill_after(self, seconds: float) -> bool:
        """SIGKILL after `seconds`; True when the worker was still working (a crash), False when it had
        already finished."""
        try:
            self.process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return True
        return False

    def finish(self) -> tuple[int, str]:
        stdout, stderr = self.process.communicate(timeout=WORKER_TIMEOUT_SECONDS)
        return self.process.returncode, stdout + stderr

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()


def _child_environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPOSITORY_ROOT)}


# -- a run worker in the middle of a dataset deletion -------------------------------------------------


def dataset_deletion_crashes(
    engine: Engine, database_url: str, aws: LocalAws, *, crashes: int, rng: random.Random
) -> CrashTally:
    """Per round: a dataset to delete (banner, 6 packages of 8 files, a time-series package) beside a
    dataset of the same organization that stays; the deletion is killed at a random moment, then run
    again to the end."""
    tally = CrashTally("run worker killed mid dataset deletion")
    s3 = aws.client("s3")
    window = 0.6  # seconds after the worker started within which the kill lands
    for round_number in range(crashes):
        data = PlatformData(engine, s3)
        tag = f"crash-{uuid.uuid4().hex[:8]}"
        organization = data.organization()
        kept = data.dataset(organization)
        kept_package = data.package(kept, organization)
        for index in range(5):
            data.file(kept_package, DATASET_BUCKET, f"{tag}/kept/{index}.bin")
        kept_objects = set(data.objects)
        doomed = data.dataset(organization)
        data.asset(doomed, DatasetAssetKind.BANNER, DATASET_ASSETS_BUCKET, f"{tag}/banner.png")
        data.timeseries(doomed, organization, TIMESERIES_BUCKET)
        for package_index in range(6):
            package = data.package(doomed, organization)
            for index in range(8):
                data.file(package, DATASET_BUCKET, f"{tag}/doomed/{package_index}/{index}.bin")
        doomed_objects = set(data.objects) - kept_objects
        tally.sent += 1

        arguments = dict(
            database_url=database_url, endpoint_url=aws.endpoint_url, dataset_id=doomed, organization_id=organization
        )
        worker = Worker("dataset-deletion", **arguments)
        try:
            if worker.kill_after(rng.uniform(0.0, window)):
                tally.crashes += 1
            else:
                window /= 2  # a faster machine: aim earlier next time
        finally:
            worker.stop()
        tally.wrongly_deleted += len(kept_objects - _stored(s3, kept_objects))

        # Started again: the next attempt (a run retry) in this process.
        stores = DeletionStores(engine, s3, TIMESERIES_BUCKET, workers=4)
        report = delete_dataset(stores, doomed, organization)
        if not report.succeeded:
            tally.problems.append(f"round {round_number}: the deletion run again failed: {report.message}")
        with engine.connect() as connection:
            dataset_left = connection.execute(sa.select(Dataset.id).where(Dataset.id == doomed)).first()
            packages_left = connection.execute(
                sa.select(sa.func.count()).where(Package.dataset_id == doomed)
            ).scalar_one()
            kept_rows = connection.execute(
                sa.select(sa.func.count()).where(Package.dataset_id == kept, Package.state == "DELETING")
            ).scalar_one()
        objects_left = doomed_objects & _stored(s3, doomed_objects)
        if dataset_left is None and packages_left == 0 and not objects_left:
            tally.completed += 1
        elif dataset_left is None:
            tally.half_deleted += 1
            tally.problems.append(f"round {round_number}: {packages_left} package rows, {len(objects_left)} objects left")
        else:
            tally.lost += 1
        tally.wrongly_deleted += len(kept_objects - _stored(s3, kept_objects)) + (1 - kept_rows)
        progress(tally, round_number)
    return tally


def _stored(s3, objects: set[tuple[str, str]]) -> set[tuple[str, str]]:
    buckets = {bucket for bucket, _ in objects}
    return {(bucket, key) for bucket in buckets for key in keys_in(s3, bucket)}


# -- the snapshot cleanup between marking and purging -------------------------------------------------


def snapshot_cleanup_crashes(
    engine: Engine, database_url: str, snapshot_root: Path, *, crashes: int, rng: random.Random
) -> CrashTally:
    """Per round: 400 expired unreferenced snapshots (to purge), 40 expired ones attached to an order
    and 40 recent ones (to keep); the cleanup, purging batches of 10 while it marks the next ones, is
    killed at a random moment, then run again to the end. After the kill and after the end, a row is
    purged exactly when its file is gone."""
    tally = CrashTally("snapshot cleanup killed between mark and purge")
    store = LocalFolderStore(snapshot_root)
    now = dt.datetime.now(dt.UTC)
    window = 0.5
    for round_number in range(crashes):
        tag = uuid.uuid4().hex[:8]
        expired = [f"{tag}-old-{index}" for index in range(400)]
        attached = [f"{tag}-attached-{index}" for index in range(40)]
        recent = [f"{tag}-new-{index}" for index in range(40)]
        with engine.begin() as connection:
            add_snapshots(connection, store, expired + attached, created_at=now - dt.timedelta(days=30))
            add_snapshots(connection, store, recent, created_at=now - dt.timedelta(days=1))
            order = add_order(connection)
            for file_id in attached:
                add_attachment_row(connection, order, file_id)
        tally.sent += 1

        arguments = dict(database_url=database_url, snapshot_root=str(snapshot_root), batch_size=10)
        worker = Worker("snapshot-cleanup", **arguments)
        try:
            if worker.kill_after(rng.uniform(0.0, window)):
                tally.crashes += 1
            else:
                window /= 2  # a faster machine: aim earlier next time
        finally:
            worker.stop()
        state = _snapshot_rows(engine, store, expired + attached + recent)
        tally.wrongly_deleted += sum(not state[file_id][1] for file_id in attached + recent)
        # A kill inside a purge's transaction may leave files gone under rows it had not committed as
        # purged: those rows stay marked, and the next run finishes them. A purged row with its file
        # still there, or a file gone under an unmarked row, would be wrong.
        purged_with_file = [file_id for file_id, (purged, exists, _) in state.items() if purged and exists]
        gone_unmarked = [file_id for file_id, (_, exists, marked) in state.items() if not exists and not marked]
        if purged_with_file or gone_unmarked:
            tally.problems.append(
                f"round {round_number}, after the kill: purged rows with files {purged_with_file[:5]}, "
                f"files gone under unmarked rows {gone_unmarked[:5]}"
            )

        report = run_cleanup(engine, store, CleanupOptions(batch_size=10, delete_workers=2))
        if report.error_count:
            tally.problems.append(f"round {round_number}: the cleanup run again failed: {report.errors}")
        state = _snapshot_rows(engine, store, expired + attached + recent)
        kept_missing = sum(state[file_id][0] or not state[file_id][1] for file_id in attached + recent)
        tally.wrongly_deleted += kept_missing
        left = [file_id for file_id in expired if not state[file_id][0] or state[file_id][1]]
        with engine.connect() as connection:
            marked_unpurged = connection.execute(
                sa.select(sa.func.count()).where(
                    snapshot_files.c.file_id.in_(expired + attached + recent),
                    snapshot_files.c.deleted_at.is_not(None),
                    snapshot_files.c.purged_at.is_(None),
                )
            ).scalar_one()
        tally.half_deleted += len(left) + marked_unpurged
        if not left and not marked_unpurged and not kept_missing:
            tally.completed += 1
        progress(tally, round_number)
    return tally


def _snapshot_rows(
    engine: Engine, store: LocalFolderStore, file_ids: list[str]
) -> dict[str, tuple[bool, bool, bool]]:
    """file_id -> (purged, file exists, marked)."""
    columns = snapshot_files.c
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(columns.file_id, columns.storage_key, columns.purged_at, columns.deleted_at).where(
                columns.file_id.in_(file_ids), columns.snapshot_type == SnapshotType.PARSE_SESSION
            )
        ).all()
    return {
        row.file_id: (row.purged_at is not None, store.exists(row.storage_key), row.deleted_at is not None)
        for row in rows
    }


# -- the daemon during a sensor tick ------------------------------------------------------------------


def intake_crashes(
    engine: Engine, database_url: str, aws: LocalAws, *, crashes: int, rng: random.Random, messages: int = 40
) -> CrashTally:
    """`messages` job messages on the queue; the intake (ticks, then runs and cursor stored together,
    as the daemon does) is killed `crashes` times at random moments and started again, then left to
    drain the queue. Every message must end in exactly one run."""
    _create_intake_tables(engine)
    try:
        return _intake_crashes(engine, database_url, aws, crashes=crashes, rng=rng, messages=messages)
    finally:
        _drop_intake_tables(engine)


def _intake_crashes(
    engine: Engine, database_url: str, aws: LocalAws, *, crashes: int, rng: random.Random, messages: int
) -> CrashTally:
    tally = CrashTally("daemon killed during a sensor tick")
    sqs = aws.client("sqs")
    sqs.set_queue_attributes(
        QueueUrl=aws.queue_url, Attributes={"VisibilityTimeout": str(INTAKE_VISIBILITY_TIMEOUT_SECONDS)}
    )
    bodies = []
    for index in range(messages):
        make = (job_messages.delete_package, job_messages.changelog, job_messages.delete_dataset)[index % 3]
        extra = {"events": [job_messages.UPDATE_NAME]} if make is job_messages.changelog else {}
        bodies.append(make(index + 1, organization_id=index % 4 + 1, **extra))
    job_ids = {json.loads(body).popitem()[1]["id"] for body in bodies}
    send(aws, *bodies)
    tally.sent = len(bodies)
    arguments = dict(
        database_url=database_url,
        endpoint_url=aws.endpoint_url,
        queue_url=aws.queue_url,
        dead_letter_queue_url=aws.dead_letter_queue_url,
    )
    for _ in range(crashes):
        worker = Worker("intake", **arguments)
        try:
            if worker.kill_after(rng.uniform(0.0, 0.8)):
                tally.crashes += 1
        finally:
            worker.stop()

    worker = Worker("intake", **arguments)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if worker.process.poll() is not None:
                tally.problems.append(f"the intake stopped: {worker.finish()[1][-2000:]}")
                break
            if counts(aws, aws.queue_url) == (0, 0) and _runs_by_job(engine).keys() >= job_ids:
                break
            time.sleep(0.5)
    finally:
        worker.stop()
    runs = _runs_by_job(engine)
    tally.completed = len(job_ids & runs.keys())
    tally.lost = len(job_ids - runs.keys())
    tally.duplicated = sum(count - 1 for job_id, count in runs.items() if job_id in job_ids)
    if counts(aws, aws.queue_url) != (0, 0):
        tally.problems.append(f"the queue did not drain: {counts(aws, aws.queue_url)}")
    if counts(aws, aws.dead_letter_queue_url) != (0, 0):
        tally.problems.append("valid messages were dead-lettered")
    return tally


def _drop_intake_tables(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(sa.text(f"DROP TABLE IF EXISTS {INTAKE_RUNS_TABLE}, {INTAKE_CURSOR_TABLE}"))


def _create_intake_tables(engine: Engine) -> None:
    _drop_intake_tables(engine)
    with engine.begin() as connection:
        connection.execute(sa.text(f"CREATE TABLE {INTAKE_RUNS_TABLE} (run_key text PRIMARY KEY, job_ids text)"))
        connection.execute(sa.text(f"CREATE TABLE {INTAKE_CURSOR_TABLE} (cursor text)"))
        connection.execute(sa.text(f"INSERT INTO {INTAKE_CURSOR_TABLE} VALUES (NULL)"))


def _runs_by_job(engine: Engine) -> Counter[str]:
    with engine.connect() as connection:
        rows = connection.execute(sa.text(f"SELECT job_ids FROM {INTAKE_RUNS_TABLE}")).scalars()
        return Counter(job_id for row in rows for job_id in row.split(","))
