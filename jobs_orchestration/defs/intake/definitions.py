"""The intake's definitions: `sqs_jobs_sensor` over the real jobs and the `job_queue` asset it observes;
the `dead_letter_queue` asset, its check, its sensor and the job that redrives it."""

from __future__ import annotations

import dagster as dg

from jobs_orchestration.defs.intake.dead_letter_queue import (
    dead_letter_queue_is_empty,
    dead_letter_queue_sensor,
)
from jobs_orchestration.defs.intake.failed_runs import failed_run_messages_sensor
from jobs_orchestration.defs.intake.job_types import SQS_JOB_TYPES
from jobs_orchestration.defs.intake.redrive import redrive_dead_letters_job
from jobs_orchestration.defs.intake.sensor import (
    JOB_QUEUE_ASSET,
    build_sqs_jobs_sensor,
)
from jobs_orchestration.defs.job_messages import DEAD_LETTER_QUEUE_ASSET
from jobs_orchestration.settings import load_settings

# The interval is part of the sensor's definition, so it is read when the code location loads; the batch
# sizes are read by each tick.
sqs_jobs_sensor = build_sqs_jobs_sensor(
    SQS_JOB_TYPES, minimum_interval_seconds=load_settings().jobs_intake_interval_seconds
)

defs = dg.Definitions(
    assets=[JOB_QUEUE_ASSET, DEAD_LETTER_QUEUE_ASSET],
    asset_checks=[dead_letter_queue_is_empty],
    jobs=[redrive_dead_letters_job],
    sensors=[sqs_jobs_sensor, failed_run_messages_sensor, dead_letter_queue_sensor],
)
