"""The intake's definitions: `sqs_jobs_sensor` over the real jobs, and the `job_queue` asset it observes."""

from __future__ import annotations

import os

import dagster as dg

from jobs_orchestration import settings
from jobs_orchestration.defs.changelog.jobs import dataset_changelog_job
from jobs_orchestration.defs.deletion.jobs import delete_dataset_job, delete_package_job
from jobs_orchestration.defs.intake.sensor import JOB_QUEUE_ASSET, build_sqs_jobs_sensor
from jobs_orchestration.defs.storage.jobs import storage_refresh_job, storage_totals_job
from jobs_orchestration.intake.handoff import IntakeLimits


def limits_from_environment() -> IntakeLimits:
    # Not a secret: reading it when the code location loads is fine, and it shows in the definitions.
    batch_size = os.environ.get(settings.JOBS_INTAKE_BATCH_SIZE, "").strip()
    return IntakeLimits(batch_size=int(batch_size)) if batch_size else IntakeLimits()


sqs_jobs_sensor = build_sqs_jobs_sensor(
    [delete_package_job, delete_dataset_job, dataset_changelog_job, storage_refresh_job, storage_totals_job],
    limits=limits_from_environment(),
)

defs = dg.Definitions(assets=[JOB_QUEUE_ASSET], sensors=[sqs_jobs_sensor])
