"""The changelog job type the SQS sensor serves: a batch of messages becomes one `dataset_changelog_job`
run."""

from __future__ import annotations

import json

import dagster as dg

from jobs_orchestration.defs.changelog.config import (
    RECORD_CHANGELOG_EVENTS_OP,
    ChangelogEventConfig,
    ChangelogEventsConfig,
    ChangelogMessageConfig,
)
from jobs_orchestration.defs.changelog.jobs import dataset_changelog_job
from jobs_orchestration.defs.intake.routing import RunBatch, SqsJobType
from jobs_orchestration.defs.job_messages import SourceMessage
from jobs_orchestration.intake.messages import DATASET_CHANGELOG, DatasetChangelogEventJob


def changelog_run(batch: RunBatch[DatasetChangelogEventJob]) -> dg.RunRequest:
    messages = [changelog_message(job, source) for job, source in batch.members()]
    return dg.RunRequest(
        job_name=dataset_changelog_job.name,
        run_key=batch.run_key,
        run_config=dg.RunConfig(ops={RECORD_CHANGELOG_EVENTS_OP: ChangelogEventsConfig(messages=messages)}),
        tags=batch.tags,
    )


def changelog_message(
    job: DatasetChangelogEventJob, source: SourceMessage | None = None
) -> ChangelogMessageConfig:
    return ChangelogMessageConfig(
        organization_id=job.organization_id,
        dataset_id=job.dataset_id,
        user_id=job.user_id,
        trace_id=job.trace_id,
        job_id=job.id,
        events=[
            ChangelogEventConfig(
                event_type=event.event_type,
                event_detail_json=json.dumps(event.event_detail, sort_keys=True),
                timestamp=event.timestamp,
            )
            for event in job.events
        ],
        source=source,
    )


SQS_JOB_TYPES: list[SqsJobType] = [SqsJobType(DATASET_CHANGELOG, [dataset_changelog_job], changelog_run)]
