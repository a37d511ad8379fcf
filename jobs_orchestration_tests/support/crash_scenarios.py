"""Crash scenarios: the part of the system that does the work runs in a child process, is killed with
SIGKILL, and is started again; afterwards every message's work is complete, nothing is lost, nothing
that had to stay is gone and nothing is left half-deleted. Each scenario returns a tally row;
`format_table` prints them. Shared by the test suite (a few crashes) and the long run.

A kill proves something only by the state it left, so each one is classified by what the database
and the storage hold right after it (each scenario's state class says how):
- nothing started: the worker had written nothing yet;
- mid-work: some of its writes were done, not all;
- after the last write: all were done, only the process's exit was left.
and by what it caught inside the scenario's most dangerous window (`in_window`). Besides the kills at
random moments, each scenario kills once at a set point inside that window (see crash_workers)."""

from __future__ import annotations

import datetime as dt
import enum
import functools
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from jobs_orchestration.db.email_parser import SnapshotType
from jobs_orchestration.db.platform import (
    Dataset,
    DatasetAsset,
    DatasetAssetKind,
    File,
    Package,
    PackageState,
    TimeSeriesChannel,
    TimeSeriesRange,
)
from jobs_orchestration.deletion.service import DeletionStores, delete_dataset
from jobs_orchestration.devstack.aws import DATASET_ASSETS_BUCKET, DATASET_BUCKET, TIMESERIES_BUCKET, LocalAws
from jobs_orchestration.devstack.stack import REPOSITORY_ROOT
from jobs_orchestration.snapshots.cleanup import CleanupOptions, run_cleanup
from jobs_orchestration.snapshots.retention import snapshot_files
from jobs_orchestration.snapshots.store import LocalFolderStore, SnapshotStore
from jobs_orchestration_tests.support import job_messages
from jobs_orchestration_tests.support.crash_workers import INTAKE_CURSOR_TABLE, INTAKE_RUN_REQUESTS_TABLE
from jobs_orchestration_tests.support.platform_data import PlatformData, keys_in
from jobs_orchestration_tests.support.queue import counts, send
from jobs_orchestration_tests.support.snapshots import add_attachment_row, add_order, add_snapshots

WORKER_TIMEOUT_SECONDS = 120
INTAKE_VISIBILITY_TIMEOUT_SECONDS = 2
"""The queue hides a message received by a tick that died this long before it comes back."""
SET_POINT = "at its set point"


class Landed(enum.StrEnum):
    NOTHING_STARTED = "nothing started"
    MID_WORK = "mid-work"
    AFTER_LAST_WRITE = "after the last write"


@dataclass(frozen=True)
class Kill:
    round_number: int
    moment: str
    """When it was aimed: a delay after the worker started, or SET_POINT."""
    landed: Landed
    in_window: int
    """What the kill left inside the scenario's dangerous window (its state class says what counts)."""
    state: str

    @property
    def at_set_point(self) -> bool:
        return self.moment == SET_POINT

    def __str__(self) -> str:
        return f"round {self.round_number + 1}, killed {self.moment}: {self.landed} ({self.state})"


@dataclass
class CrashTally:
    scenario: str
    kills: list[Kill] = field(default_factory=list)
    """Kills that hit a worker still running, with the state each left."""
    missed: int = 0
    """Kills aimed at a worker that had already finished: nothing was crashed."""
    sent: int = 0
    completed: int = 0
    lost: int = 0
    duplicated: int = 0
    wrongly_deleted: int = 0
    half_deleted: int = 0
    problems: list[str] = field(default_factory=list)

    def record(self, kill: Kill) -> None:
        self.kills.append(kill)
        print(f"{self.scenario}: {kill}", file=sys.stderr, flush=True)

    @property
    def crashes(self) -> int:
        return len(self.kills)

    def landed(self, where: Landed) -> int:
        return sum(kill.landed is where for kill in self.kills)

    @property
    def kills_in_window(self) -> int:
        return sum(kill.in_window > 0 for kill in self.kills)

    @property
    def set_point_kills(self) -> list[Kill]:
        return [kill for kill in self.kills if kill.at_set_point]

    @property
    def sound(self) -> bool:
        return not (
            self.lost or self.duplicated or self.wrongly_deleted or self.half_deleted or self.problems
        )


COLUMNS: tuple[tuple[str, Callable[[CrashTally], object]], ...] = (
    ("scenario", lambda tally: tally.scenario),
    ("crashes injected", lambda tally: tally.crashes),
    ("at a set point", lambda tally: len(tally.set_point_kills)),
    ("left: nothing started", lambda tally: tally.landed(Landed.NOTHING_STARTED)),
    ("mid-work", lambda tally: tally.landed(Landed.MID_WORK)),
    ("in the window", lambda tally: tally.kills_in_window),
    ("after the last write", lambda tally: tally.landed(Landed.AFTER_LAST_WRITE)),
    ("missed (done first)", lambda tally: tally.missed),
    ("messages sent", lambda tally: tally.sent),
    ("messages completed", lambda tally: tally.completed),
    ("lost", lambda tally: tally.lost),
    ("duplicated side effects", lambda tally: tally.duplicated),
    ("deleted but had to stay", lambda tally: tally.wrongly_deleted),
    ("left half-deleted", lambda tally: tally.half_deleted),
)


def progress(tally: CrashTally, round_number: int) -> None:
    print(f"{tally.scenario}: round {round_number + 1} done", file=sys.stderr, flush=True)


def format_table(tallies: list[CrashTally]) -> str:
    cells = [[str(value(tally)) for _, value in COLUMNS] for tally in tallies]
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
            [
                sys.executable,
                "-m",
                "jobs_orchestration_tests.support.crash_workers",
                kind,
                json.dumps(arguments),
            ],
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

    def killed_itself(self) -> bool:
        """Wait for a worker given `kill_in_window`; True when it died of SIGKILL (at its set point)."""
        try:
            self.process.wait(timeout=WORKER_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            return False
        return self.process.returncode == -signal.SIGKILL

    def finish(self) -> tuple[int, str]:
        stdout, stderr = self.process.communicate(timeout=WORKER_TIMEOUT_SECONDS)
        return self.process.returncode, stdout + stderr

    def stop(self) -> str:
        """Kill the worker if it still runs; returns what it printed."""
        if self.process.poll() is None:
            self.process.kill()
        stdout, stderr = self.process.communicate()
        return stdout + stderr


class KillAttempt(NamedTuple):
    moment: str | None
    """When the kill landed; None when the worker finished first."""
    output: str


def kill_worker(kind: str, arguments: dict[str, Any], *, at_set_point: bool, delay: float) -> KillAttempt:
    """Start a worker and kill it, at its set point or `delay` seconds after it started."""
    worker = Worker(kind, **arguments, kill_in_window=at_set_point)
    try:
        if at_set_point:
            moment = SET_POINT if worker.killed_itself() else None
        else:
            moment = f"{delay:.2f} s after it started" if worker.kill_after(delay) else None
    finally:
        output = worker.stop()
    return KillAttempt(moment, output)


def _rounds(crashes: int, set_point: bool) -> list[bool]:
    """Whether each round kills at the set point: the set point first, then the random moments."""
    return [True] * set_point + [False] * crashes


class KillState(Protocol):
    """What a scenario observes right after a kill; str() describes it."""

    @property
    def landed(self) -> Landed: ...

    @property
    def in_window(self) -> int: ...


def kill_and_observe(
    tally: CrashTally,
    round_number: int,
    kind: str,
    arguments: dict[str, Any],
    observe: Callable[[], KillState],
    *,
    at_set_point: bool,
    delay: float,
) -> Landed | None:
    """Kill a worker (see kill_worker) and record the state it left; None when it finished first."""
    attempt = kill_worker(kind, arguments, at_set_point=at_set_point, delay=delay)
    if attempt.moment is None:
        tally.missed += 1
        if at_set_point:
            tally.problems.append(
                f"round {round_number + 1}: the worker finished without reaching its set point: "
                f"{attempt.output[-2000:]}"
            )
        return None
    state = observe()
    tally.record(Kill(round_number, attempt.moment, state.landed, state.in_window, str(state)))
    return state.landed


def _aim(window: float, landed: Landed | None) -> float:
    """The latest moment of the next random kill: earlier when this one found the worker finished
    (`landed` None) or came after its last write (a faster machine), so more kills land mid-work."""
    return window * 0.6 if landed in (None, Landed.AFTER_LAST_WRITE) else window


def _child_environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPOSITORY_ROOT)}


# -- a run worker in the middle of a dataset deletion -------------------------------------------------


@dataclass(frozen=True)
class DeletionState:
    """A dataset deletion as a kill left it. Nothing started: every object and every row that locates
    one still there, no package closed; after the last write: the dataset row is gone; mid-work:
    anything between. The window is between an S3 DeleteObjects call and the removal of the rows
    naming its objects: `rows_naming_gone_objects`."""

    dataset_left: bool
    objects_left: int
    objects: int
    rows_left: int
    rows: int
    rows_naming_gone_objects: int
    packages_left: int
    packages_closed: int

    @property
    def in_window(self) -> int:
        return self.rows_naming_gone_objects

    @property
    def finished(self) -> bool:
        return not (self.dataset_left or self.packages_left or self.rows_left or self.objects_left)

    @property
    def landed(self) -> Landed:
        if not self.dataset_left:
            return Landed.AFTER_LAST_WRITE
        if self.objects_left == self.objects and self.rows_left == self.rows and not self.packages_closed:
            return Landed.NOTHING_STARTED
        return Landed.MID_WORK

    def __str__(self) -> str:
        return (
            f"{self.objects_left}/{self.objects} objects and {self.rows_left}/{self.rows} rows left, "
            f"{self.rows_naming_gone_objects} rows naming a deleted object, {self.packages_left} packages "
            f"left ({self.packages_closed} closed), dataset row {'left' if self.dataset_left else 'gone'}"
        )


@dataclass
class DatasetDeletionWatch:
    """Observes a dataset's deletion: `objects` are the dataset's (single-object) stored objects."""

    engine: Engine
    s3: Any
    dataset_id: int
    objects: set[tuple[str, str]]
    rows: int = field(init=False)

    def __post_init__(self) -> None:
        self.rows = len(self._located())

    def observe(self) -> DeletionState:
        stored = _stored(self.s3, self.objects)
        located = self._located()
        with self.engine.connect() as connection:
            dataset_left = (
                connection.execute(sa.select(Dataset.id).where(Dataset.id == self.dataset_id)).first()
                is not None
            )
            packages = dict(
                connection.execute(
                    sa.select(Package.state, sa.func.count())
                    .where(Package.dataset_id == self.dataset_id)
                    .group_by(Package.state)
                ).all()
            )
        return DeletionState(
            dataset_left=dataset_left,
            objects_left=len(self.objects & stored),
            objects=len(self.objects),
            rows_left=len(located),
            rows=self.rows,
            rows_naming_gone_objects=sum(place not in stored for place in located),
            packages_left=sum(packages.values()),
            packages_closed=packages.get(PackageState.DELETED, 0),
        )

    def _located(self) -> list[tuple[str, str]]:
        """(bucket, key) named by each file, time-series range and asset row of the dataset."""
        in_dataset = Package.dataset_id == self.dataset_id
        files = (
            sa.select(File.s3_bucket, File.s3_key)
            .join(Package, Package.id == File.package_id)
            .where(in_dataset)
        )
        ranges = (
            sa.select(sa.literal(TIMESERIES_BUCKET), TimeSeriesRange.location)
            .join(TimeSeriesChannel, TimeSeriesChannel.id == TimeSeriesRange.channel_id)
            .join(Package, Package.id == TimeSeriesChannel.package_id)
            .where(in_dataset)
        )
        assets = sa.select(DatasetAsset.s3_bucket, DatasetAsset.s3_key).where(
            DatasetAsset.dataset_id == self.dataset_id
        )
        with self.engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sa.union_all(files, ranges, assets))]


def dataset_deletion_crashes(
    engine: Engine,
    database_url: str,
    aws: LocalAws,
    *,
    crashes: int,
    rng: random.Random,
    set_point: bool = True,
) -> CrashTally:
    """Per round: a dataset to delete (banner, 6 packages of 8 files, a time-series package) beside a
    dataset of the same organization that stays; the deletion is killed (at its set point, right
    after a DeleteObjects call returned, then at random moments), then run again to the end."""
    tally = CrashTally("dataset deletion")
    s3 = aws.client("s3")
    window = 0.6  # seconds after the worker started within which the kill lands
    for round_number, at_set_point in enumerate(_rounds(crashes, set_point)):
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
        watch = DatasetDeletionWatch(engine, s3, doomed, set(data.objects) - kept_objects)
        tally.sent += 1

        arguments = dict(
            database_url=database_url,
            endpoint_url=aws.endpoint_url,
            dataset_id=doomed,
            organization_id=organization,
        )
        landed = kill_and_observe(
            tally,
            round_number,
            "dataset-deletion",
            arguments,
            watch.observe,
            at_set_point=at_set_point,
            delay=rng.uniform(0.0, window),
        )
        if not at_set_point:
            window = _aim(window, landed)

        # Started again: the next attempt (a run retry) in this process.
        stores = DeletionStores(engine, s3, TIMESERIES_BUCKET, workers=4)
        report = delete_dataset(stores, doomed, organization)
        if not report.succeeded:
            tally.problems.append(
                f"round {round_number + 1}: the deletion run again failed: {report.message}"
            )
        state = watch.observe()
        with engine.connect() as connection:
            kept_rows = connection.execute(
                sa.select(sa.func.count()).where(Package.dataset_id == kept, Package.state == "DELETING")
            ).scalar_one()
        if state.finished:
            tally.completed += 1
        elif not state.dataset_left:
            tally.half_deleted += 1
            tally.problems.append(f"round {round_number + 1}: {state}")
        else:
            tally.lost += 1
        tally.wrongly_deleted += len(kept_objects - _stored(s3, kept_objects)) + (1 - kept_rows)
        progress(tally, round_number)
    return tally


def _stored(s3, objects: set[tuple[str, str]]) -> set[tuple[str, str]]:
    buckets = {bucket for bucket, _ in objects}
    return {(bucket, key) for bucket in buckets for key in keys_in(s3, bucket)}


# -- the snapshot cleanup between marking and purging -------------------------------------------------


@dataclass(frozen=True)
class CleanupState:
    """A snapshot cleanup as a kill left it, over the expired rows it had to purge. Nothing started: no
    row marked; after the last write: every one purged; mid-work: some marked, not all purged. The
    window is between a batch's file deletes and its purge commit: `files_gone_unpurged`, marked rows
    not (committed as) purged whose file is already gone."""

    expired: int
    marked: int
    purged: int
    files_gone_unpurged: int

    @property
    def in_window(self) -> int:
        return self.files_gone_unpurged

    @property
    def landed(self) -> Landed:
        if self.purged == self.expired:
            return Landed.AFTER_LAST_WRITE
        return Landed.MID_WORK if self.marked else Landed.NOTHING_STARTED

    def __str__(self) -> str:
        return (
            f"{self.marked}/{self.expired} expired rows marked, {self.purged} purged, "
            f"{self.files_gone_unpurged} files gone under rows not purged"
        )


def snapshot_rows(
    engine: Engine, store: SnapshotStore, file_ids: list[str]
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


def observe_cleanup(engine: Engine, store: SnapshotStore, expired: list[str]) -> CleanupState:
    state = snapshot_rows(engine, store, expired).values()
    return CleanupState(
        expired=len(expired),
        marked=sum(marked for _, _, marked in state),
        purged=sum(purged for purged, _, _ in state),
        files_gone_unpurged=sum(marked and not purged and not exists for purged, exists, marked in state),
    )


def snapshot_cleanup_crashes(
    engine: Engine,
    database_url: str,
    snapshot_root: Path,
    *,
    crashes: int,
    rng: random.Random,
    set_point: bool = True,
) -> CrashTally:
    """Per round: 400 expired unreferenced snapshots (to purge), 40 expired ones attached to an order
    and 40 recent ones (to keep); the cleanup, purging batches of 10 while it marks the next ones, is
    killed (at its set point, just before a purge commits, then at random moments), then run again to
    the end. After the kill and after the end, a row is purged exactly when its file is gone."""
    tally = CrashTally("snapshot cleanup")
    store = LocalFolderStore(snapshot_root)
    now = dt.datetime.now(dt.UTC)
    window = 0.5
    for round_number, at_set_point in enumerate(_rounds(crashes, set_point)):
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
        landed = kill_and_observe(
            tally,
            round_number,
            "snapshot-cleanup",
            arguments,
            functools.partial(observe_cleanup, engine, store, expired),
            at_set_point=at_set_point,
            delay=rng.uniform(0.0, window),
        )
        if not at_set_point:
            window = _aim(window, landed)
        state = snapshot_rows(engine, store, expired + attached + recent)
        # A kill inside a purge's transaction may leave files gone under rows it had not committed as
        # purged: those rows stay marked, and the next run finishes them. A purged row with its file
        # still there, or a file gone under an unmarked row, would be wrong.
        purged_with_file = [file_id for file_id, (purged, exists, _) in state.items() if purged and exists]
        gone_unmarked = [
            file_id for file_id, (_, exists, marked) in state.items() if not exists and not marked
        ]
        if purged_with_file or gone_unmarked:
            tally.problems.append(
                f"round {round_number + 1}, after the kill: purged rows with files {purged_with_file[:5]}, "
                f"files gone under unmarked rows {gone_unmarked[:5]}"
            )

        report = run_cleanup(engine, store, CleanupOptions(batch_size=10, delete_workers=2))
        if report.error_count:
            tally.problems.append(f"round {round_number + 1}: the cleanup run again failed: {report.errors}")
        state = snapshot_rows(engine, store, expired + attached + recent)
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


# -- the daemon during a sensor tick ------------------------------------------------------------------


@dataclass(frozen=True)
class IntakeState:
    """The intake as a kill left it. Nothing started: the killed intake asked for no run and deleted
    no message; after the last write: every message has a run and the queue is empty; mid-work:
    anything between. The window is between a run's creation and the deletion of its messages from
    the queue: `run_but_queued`, messages that have a run and are still on the queue."""

    sent: int
    with_run: int
    on_queue: int
    """Visible and in flight."""
    wrote: bool
    """Whether the killed intake asked for a run or deleted a message."""

    @property
    def run_but_queued(self) -> int:
        # A message leaves the queue only once it has a run, so the ones gone all have one.
        return max(self.with_run - (self.sent - self.on_queue), 0)

    @property
    def in_window(self) -> int:
        return self.run_but_queued

    @property
    def landed(self) -> Landed:
        if self.with_run == self.sent and self.on_queue == 0:
            return Landed.AFTER_LAST_WRITE
        return Landed.MID_WORK if self.wrote else Landed.NOTHING_STARTED

    def __str__(self) -> str:
        return (
            f"{self.with_run}/{self.sent} messages have a run, {self.on_queue} on the queue, "
            f"{self.run_but_queued} of them with a run"
        )


def intake_crashes(
    engine: Engine,
    database_url: str,
    aws: LocalAws,
    *,
    crashes: int,
    rng: random.Random,
    messages: int = 40,
    set_point: bool = True,
    lose_cursor: bool = False,
) -> CrashTally:
    """`messages` job messages on the queue; the intake (ticks, then runs and cursor stored together,
    as the daemon does) is killed (at its set point, between runs created and their messages deleted,
    then `crashes` times at random moments) and started again, then left to drain the queue. Every
    message must end in exactly one run request. `lose_cursor` forgets the cursor after the kills, as
    an intake that lost it would: the messages of runs not yet acknowledged then ask for runs again,
    which the tally must count as duplicated."""
    _create_intake_tables(engine)
    try:
        return _intake_crashes(
            engine,
            database_url,
            aws,
            crashes=crashes,
            rng=rng,
            messages=messages,
            set_point=set_point,
            lose_cursor=lose_cursor,
        )
    finally:
        _drop_intake_tables(engine)


def _intake_crashes(
    engine: Engine,
    database_url: str,
    aws: LocalAws,
    *,
    crashes: int,
    rng: random.Random,
    messages: int,
    set_point: bool,
    lose_cursor: bool,
) -> CrashTally:
    tally = CrashTally("intake (sensor ticks)")
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
    for round_number, at_set_point in enumerate(_rounds(crashes, set_point)):
        observe = functools.partial(
            _observe_intake, engine, aws, job_ids, _run_requests(engine), sum(counts(aws, aws.queue_url))
        )
        kill_and_observe(
            tally,
            round_number,
            "intake",
            arguments,
            observe,
            at_set_point=at_set_point,
            delay=rng.uniform(0.0, 0.8),
        )
    if lose_cursor:
        with engine.begin() as connection:
            connection.execute(sa.text(f"UPDATE {INTAKE_CURSOR_TABLE} SET cursor = NULL"))

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


def _observe_intake(
    engine: Engine, aws: LocalAws, job_ids: set[str], requests_before: int, on_queue_before: int
) -> IntakeState:
    on_queue = sum(counts(aws, aws.queue_url))
    return IntakeState(
        sent=len(job_ids),
        with_run=len(job_ids & _runs_by_job(engine).keys()),
        on_queue=on_queue,
        wrote=_run_requests(engine) > requests_before or on_queue < on_queue_before,
    )


def _drop_intake_tables(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.text(f"DROP TABLE IF EXISTS {INTAKE_RUN_REQUESTS_TABLE}, {INTAKE_CURSOR_TABLE}")
        )


def _create_intake_tables(engine: Engine) -> None:
    _drop_intake_tables(engine)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                f"CREATE TABLE {INTAKE_RUN_REQUESTS_TABLE} "
                "(request_id bigserial PRIMARY KEY, run_key text NOT NULL, job_ids text NOT NULL)"
            )
        )
        connection.execute(sa.text(f"CREATE TABLE {INTAKE_CURSOR_TABLE} (cursor text)"))
        connection.execute(sa.text(f"INSERT INTO {INTAKE_CURSOR_TABLE} VALUES (NULL)"))


def _run_requests(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.text(f"SELECT count(*) FROM {INTAKE_RUN_REQUESTS_TABLE}")).scalar_one()


def _runs_by_job(engine: Engine) -> Counter[str]:
    """How many run requests carry each producer job id."""
    with engine.connect() as connection:
        rows = connection.execute(sa.text(f"SELECT job_ids FROM {INTAKE_RUN_REQUESTS_TABLE}")).scalars()
        return Counter(job_id for row in rows for job_id in row.split(","))
