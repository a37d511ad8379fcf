"""The parts of the system that a crash can interrupt, each run in a child process that a test kills
with SIGKILL: `python -m jobs_orchestration_tests.support.crash_workers KIND 'JSON ARGUMENTS'`.

Each prints `started` once its setup is done, so the parent times its kill from the work itself and
not from the interpreter's start-up.

Given `kill_in_window`, a worker kills itself (SIGKILL, as the parent would) at a set point inside
its most dangerous window, through a hook on the real client call or database engine it uses: the
code under test runs unchanged.
- the deletion: right after an S3 DeleteObjects call returns, before the rows naming those objects go;
- the snapshot cleanup: after a batch's files are deleted, just before its purge commits;
- the intake: once runs exist, just before their messages are deleted from the queue (the first
  DeleteMessageBatch call)."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any

import boto3
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from jobs_orchestration.db.engine import create_db_engine
from jobs_orchestration.deletion.service import DeletionStores, delete_dataset
from jobs_orchestration.devstack.aws import LOCAL_CREDENTIALS, TIMESERIES_BUCKET
from jobs_orchestration.intake.handoff import IntakeLimits, JobBatch, QueueIntake
from jobs_orchestration.snapshots.cleanup import CleanupOptions, run_cleanup
from jobs_orchestration.snapshots.store import LocalFolderStore

INTAKE_RUN_REQUESTS_TABLE = "crash_intake_run_requests"
"""Every run the intake asked for, one row per request, never merged: a message in two rows asked
for two runs."""
INTAKE_CURSOR_TABLE = "crash_intake_cursor"
PURGE_STATEMENT = "UPDATE snapshot_files SET purged_at="
"""How the purge's UPDATE begins once compiled (jobs_orchestration.snapshots.cleanup.purge_batch)."""


def _client(service: str, endpoint_url: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=LOCAL_CREDENTIALS["AWS_REGION"],
        aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def _started() -> None:
    print("started", flush=True)


def _die(**_: object) -> None:
    """SIGKILL this process: no handler runs, nothing is flushed or rolled back by the process."""
    os.kill(os.getpid(), signal.SIGKILL)


def _die_on_call(client: Any, moment: str, operation: str) -> None:
    """`moment` is "before-call" (the request is not sent) or "after-call" (the answer was received)."""
    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"{moment}.{service}.{operation}", _die)


def _die_before_purge_commit(engine: Engine) -> None:
    """Die at the commit of the first transaction that ran the purge's UPDATE: its files are deleted
    by then, and the rows' `purged_at` is not committed."""

    @sa.event.listens_for(engine, "after_cursor_execute")
    def note_purge(connection, cursor, statement, parameters, context, executemany) -> None:
        if statement.startswith(PURGE_STATEMENT):
            connection.info["purge_uncommitted"] = True

    @sa.event.listens_for(engine, "commit")
    def before_commit(connection) -> None:
        if connection.info.get("purge_uncommitted"):
            _die()

    @sa.event.listens_for(engine, "rollback")
    def forget_purge(connection) -> None:
        # The note lives on the pooled connection: a purge rolled back must not kill a later commit.
        connection.info.pop("purge_uncommitted", None)


def dataset_deletion(
    database_url: str, endpoint_url: str, dataset_id: int, organization_id: int, kill_in_window: bool = False
) -> int:
    engine = create_db_engine(database_url)
    s3 = _client("s3", endpoint_url)
    if kill_in_window:
        _die_on_call(s3, "after-call", "DeleteObjects")
    stores = DeletionStores(engine, s3, TIMESERIES_BUCKET, workers=4)
    _started()
    report = delete_dataset(stores, dataset_id, organization_id)
    print(report.outcome.value, flush=True)
    return 0 if report.succeeded else 1


def snapshot_cleanup(
    database_url: str, snapshot_root: str, batch_size: int, kill_in_window: bool = False
) -> int:
    engine = create_db_engine(database_url)
    if kill_in_window:
        _die_before_purge_commit(engine)
    store = LocalFolderStore(snapshot_root)
    options = CleanupOptions(batch_size=batch_size, delete_workers=2)
    _started()
    report = run_cleanup(engine, store, options)
    print(f"deleted {report.deleted_count}, errors {report.error_count}", flush=True)
    return 0 if report.error_count == 0 else 1


def intake(
    database_url: str,
    endpoint_url: str,
    queue_url: str,
    dead_letter_queue_url: str,
    kill_in_window: bool = False,
) -> int:
    """What the daemon does with the intake sensor, tick after tick: evaluate a tick, then store the
    runs it asked for together with its cursor in one transaction (Dagster stores a tick's cursor with
    the runs it reserved). A run here is a row naming the producer job ids it carries. Every request
    is recorded, even one whose run key was asked for before: Dagster would skip that one, but the
    intake must never ask twice, so the check counts it as a duplicate."""
    engine = create_db_engine(database_url)
    sqs = _client("sqs", endpoint_url)
    if kill_in_window:
        _die_on_call(sqs, "before-call", "DeleteMessageBatch")
    queue = QueueIntake(
        sqs,
        queue_url,
        dead_letter_queue_url,
        IntakeLimits(batch_size=3, max_messages=10, wait_time_seconds=0),
    )

    def run_exists(run_key: str) -> bool:
        with engine.connect() as connection:
            statement = sa.text(f"SELECT 1 FROM {INTAKE_RUN_REQUESTS_TABLE} WHERE run_key = :key LIMIT 1")
            return connection.execute(statement, {"key": run_key}).first() is not None

    def route(batch: JobBatch) -> tuple[str, str]:
        return batch.run_key, ",".join(sorted(job.id for job in batch.jobs))

    _started()
    while True:
        with engine.connect() as connection:
            cursor = connection.execute(sa.text(f"SELECT cursor FROM {INTAKE_CURSOR_TABLE}")).scalar()
        result = queue.tick(cursor, run_exists, route)
        with engine.begin() as connection:
            for run_key, job_ids in result.requests:
                connection.execute(
                    sa.text(
                        f"INSERT INTO {INTAKE_RUN_REQUESTS_TABLE} (run_key, job_ids) VALUES (:key, :ids)"
                    ),
                    {"key": run_key, "ids": job_ids},
                )
            connection.execute(
                sa.text(f"UPDATE {INTAKE_CURSOR_TABLE} SET cursor = :cursor"), {"cursor": result.cursor}
            )
        time.sleep(0.1)


WORKERS = {"dataset-deletion": dataset_deletion, "snapshot-cleanup": snapshot_cleanup, "intake": intake}


if __name__ == "__main__":
    kind, arguments = sys.argv[1], json.loads(sys.argv[2])
    sys.exit(WORKERS[kind](**arguments))
