"""Crashes of the real processes of the running system (see running_system): the daemon killed during
a sensor tick, a run worker killed in the middle of a dataset deletion, the snapshot cleanup's run
worker killed between marking and purging. Crashed runs come back through the run retries of
dagster.yaml; the daemon is started again. Each returns a CrashTally row."""

from __future__ import annotations

import datetime as dt
import functools
import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from jobs_orchestration.devstack.aws import DATASET_BUCKET
from jobs_orchestration.snapshots.retention import snapshot_files
from jobs_orchestration.snapshots.store import LocalFolderStore
from jobs_orchestration_tests.support.crash_scenarios import (
    CrashTally,
    DatasetDeletionWatch,
    IntakeState,
    Kill,
    observe_cleanup,
    progress,
    snapshot_rows,
)
from jobs_orchestration_tests.support.platform_data import PlatformData, keys_in
from jobs_orchestration_tests.support.running_system import RunningSystem, RunSummary
from jobs_orchestration_tests.support.snapshots import add_attachment_row, add_order, add_snapshots
from jobs_orchestration_tests.support.system_workload import build_workload, effects_missing

COMPLETION_TIMEOUT_SECONDS = 900
"""A run the killed daemon was launching stays STARTING until run monitoring's start timeout (180 s in
dagster.yaml, checked every 30 s) fails it and the run retry starts it again: allow for that, and for
the retry, on a busy machine."""


def duplicated_runs(runs: list[RunSummary], job_ids: set[str]) -> int:
    """Messages carried by more than one successful run that is not a retry of another."""
    roots: dict[str, set[str]] = {}
    for run in runs:
        if run.status != "SUCCESS":
            continue
        root = run.tags.get("dagster/root_run_id", run.run_id)
        for job_id in run.producer_job_ids & job_ids:
            roots.setdefault(job_id, set()).add(root)
    return sum(len(found) - 1 for found in roots.values())


def _completed(system: RunningSystem, job_ids: set[str]) -> tuple[int, int, list[RunSummary]]:
    runs = system.runs()
    succeeded = {job_id for run in runs if run.status == "SUCCESS" for job_id in run.producer_job_ids}
    return len(job_ids & succeeded), len(job_ids - succeeded), runs


def daemon_crashes(system: RunningSystem, *, crashes: int, rng: random.Random) -> CrashTally:
    """Per round: the workload's messages go on the queue; at a random moment after a tick has begun
    receiving them, the daemon is killed (SIGKILL, its whole process group) and started again."""
    tally = CrashTally("daemon during a sensor tick (full system)")
    s3 = system.aws.client("s3")
    for round_number in range(crashes):
        workload = build_workload(system.engine, s3, tag=f"daemon-{round_number}-{uuid.uuid4().hex[:6]}")
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda arguments: system.enqueue(*arguments), workload.messages))
        tally.sent += len(workload.messages)

        # A tick has begun taking the messages once some are in flight; it goes on to create their runs
        # and store its cursor, and the kill lands somewhere in there (or, rarely, just after).
        system.wait_for("a tick received the messages", lambda: system.queue_counts()[1] > 0, 120, 0.1)
        delay = rng.uniform(0.0, 1.0)
        time.sleep(delay)
        system.stack.kill("daemon")
        state = _intake_state(system, workload.job_ids)
        moment = f"{delay:.2f} s after a tick received"
        tally.record(Kill(round_number, moment, state.landed, state.in_window, str(state)))
        system.stack.start_again("daemon")

        try:
            system.wait_until_done(workload.job_ids, COMPLETION_TIMEOUT_SECONDS, failures_expected=True)
        except AssertionError as error:  # counted below as lost or half-deleted, and reported
            tally.problems.append(f"round {round_number + 1}: {str(error)[:1000]}")
        completed, lost, runs = _completed(system, workload.job_ids)
        tally.completed += completed
        tally.lost += lost
        tally.duplicated += duplicated_runs(runs, workload.job_ids)
        problems = effects_missing(system.engine, s3, workload)
        tally.wrongly_deleted += sum("should stay" in problem or "kept" in problem for problem in problems)
        tally.problems += [f"round {round_number + 1}: {problem}" for problem in problems]
        progress(tally, round_number)
    return tally


def run_worker_crashes(system: RunningSystem, *, crashes: int, rng: random.Random) -> CrashTally:
    """Per round: a dataset of 20 packages of 100 files is deleted through a message; once its step has
    started, the run worker and its step process are killed at a random moment within the second the
    deletion takes; the run retry must finish the deletion and leave the dataset beside it untouched."""
    tally = CrashTally("run worker in a dataset deletion (full system)")
    s3 = system.aws.client("s3")
    for round_number in range(crashes):
        data = PlatformData(system.engine, s3)
        tag = f"worker-{round_number}-{uuid.uuid4().hex[:6]}"
        organization = data.organization()
        kept = data.dataset(organization)
        kept_package = data.package(kept, organization)
        data.file(kept_package, DATASET_BUCKET, f"{tag}/kept.bin")
        kept_objects = set(data.objects)
        doomed = data.dataset(organization)
        for package_index in range(20):
            package = data.package(doomed, organization)
            for index in range(100):
                data.file(package, DATASET_BUCKET, f"{tag}/doomed/{package_index}/{index}.bin")
        watch = DatasetDeletionWatch(system.engine, s3, doomed, set(data.objects) - kept_objects)
        job_id = str(uuid.uuid4())
        system.enqueue(
            "delete-dataset",
            "--dataset-id",
            str(doomed),
            "--organization-id",
            str(organization),
            "--user-id",
            "N:user:crash",
            "--id",
            job_id,
        )
        tally.sent += 1

        with system.instance() as instance:
            step_started = functools.partial(
                system.run_with_step_started, instance, "delete_dataset_job", job_id
            )
            run_id = system.wait_for("the deletion step started", step_started, 300, interval=0.2)
            delay = rng.uniform(0.0, 1.0)
            time.sleep(delay)
            if system.kill_run_worker(instance, run_id):
                state = watch.observe()
                moment = f"{delay:.2f} s after its step started"
                tally.record(Kill(round_number, moment, state.landed, state.in_window, str(state)))
            else:
                tally.missed += 1

        try:
            system.wait_until_done({job_id}, COMPLETION_TIMEOUT_SECONDS, failures_expected=True)
        except AssertionError as error:  # counted below as lost or half-deleted, and reported
            tally.problems.append(f"round {round_number + 1}: {str(error)[:1000]}")
        completed, lost, runs = _completed(system, {job_id})
        tally.completed += completed
        tally.lost += lost
        tally.duplicated += duplicated_runs(runs, {job_id})
        stored = {(DATASET_BUCKET, key) for key in keys_in(s3, DATASET_BUCKET)}
        tally.wrongly_deleted += len(kept_objects - stored)
        state = watch.observe()
        if not state.finished:
            tally.half_deleted += 1
            tally.problems.append(f"round {round_number + 1}: dataset {doomed}: {state}")
        progress(tally, round_number)
    return tally


def snapshot_cleanup_crashes(system: RunningSystem, *, crashes: int, rng: random.Random) -> CrashTally:
    """Per round: 1,500 expired snapshots to purge beside attached and recent ones to keep; the
    cleanup run (batches of 10) is launched through the webserver and its worker killed at a random
    moment once marking has begun; the run retry finishes the purge."""
    tally = CrashTally("snapshot cleanup run worker (full system)")
    store = LocalFolderStore(system.stack.workdir / "snapshots")
    now = dt.datetime.now(dt.UTC)
    for round_number in range(crashes):
        tag = uuid.uuid4().hex[:8]
        expired = [f"{tag}-old-{index}" for index in range(1500)]
        kept = [f"{tag}-attached-{index}" for index in range(50)]
        recent = [f"{tag}-new-{index}" for index in range(50)]
        with system.engine.begin() as connection:
            add_snapshots(connection, store, expired + kept, created_at=now - dt.timedelta(days=30))
            add_snapshots(connection, store, recent, created_at=now - dt.timedelta(days=1))
            order = add_order(connection)
            for file_id in kept:
                add_attachment_row(connection, order, file_id)
        run_config = {"ops": {"snapshot_cleanup": {"config": {"batch_size": 10, "delete_workers": 2}}}}
        run_id = system.launch("snapshot_cleanup_job", run_config)
        tally.sent += 1

        def marking_begun(expired: list[str] = expired) -> bool:
            with system.engine.connect() as connection:
                return bool(
                    connection.execute(
                        sa.select(sa.func.count()).where(
                            snapshot_files.c.file_id.in_(expired), snapshot_files.c.deleted_at.is_not(None)
                        )
                    ).scalar_one()
                )

        system.wait_for("the cleanup began marking", marking_begun, 300, interval=0.2)
        delay = rng.uniform(0.0, 1.0)
        time.sleep(delay)
        with system.instance() as instance:
            killed = system.kill_run_worker(instance, run_id)
        if killed:
            kill_state = observe_cleanup(system.engine, store, expired)
            moment = f"{delay:.2f} s after marking began"
            tally.record(Kill(round_number, moment, kill_state.landed, kill_state.in_window, str(kill_state)))
        else:
            tally.missed += 1

        def retried_and_done(run_id: str = run_id) -> bool:
            runs = [run for run in system.runs("snapshot_cleanup_job")]
            group = [run for run in runs if run.tags.get("dagster/root_run_id", run.run_id) == run_id]
            return any(run.status == "SUCCESS" for run in group) and not any(
                run.status in ("QUEUED", "STARTING", "STARTED") for run in group
            )

        try:
            system.wait_for(
                "the cleanup run or its retry succeeded", retried_and_done, COMPLETION_TIMEOUT_SECONDS, 2
            )
            tally.completed += 1
        except AssertionError as error:
            tally.lost += 1
            tally.problems.append(f"round {round_number + 1}: {str(error)[:1000]}")
        state = snapshot_rows(system.engine, store, expired + kept + recent)
        tally.wrongly_deleted += sum(state[f][0] or not state[f][1] for f in kept + recent)
        tally.half_deleted += sum(not state[f][0] or state[f][1] for f in expired)
        progress(tally, round_number)
    return tally


def _intake_state(system: RunningSystem, job_ids: set[str]) -> IntakeState:
    with_run = {job_id for run in system.runs() for job_id in run.producer_job_ids}
    on_queue = sum(system.queue_counts())
    return IntakeState(
        sent=len(job_ids),
        with_run=len(job_ids & with_run),
        on_queue=on_queue,
        wrote=bool(job_ids & with_run) or on_queue < len(job_ids),
    )
