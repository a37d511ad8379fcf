"""Every job type `sqs_jobs_sensor` serves, each declared beside its jobs."""

from __future__ import annotations

from jobs_orchestration.defs.changelog import job_types as changelog
from jobs_orchestration.defs.deletion import job_types as deletion
from jobs_orchestration.defs.intake.routing import SqsJobType
from jobs_orchestration.defs.storage import job_types as storage

SQS_JOB_TYPES: list[SqsJobType] = [*deletion.SQS_JOB_TYPES, *changelog.SQS_JOB_TYPES, *storage.SQS_JOB_TYPES]
