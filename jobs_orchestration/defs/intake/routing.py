"""Which run each batch of job messages becomes: job, run config (the contracts in `defs/*/config.py`)
and tags."""

from __future__ import annotations

import json

import dagster as dg

from jobs_orchestration.defs.changelog.config import (
    RECORD_CHANGELOG_EVENTS_OP,
    ChangelogEventConfig,
    ChangelogEventsConfig,
    ChangelogMessageConfig,
)
from jobs_orchestration.defs.deletion.config import (
    DELETE_DATASET_OP,
    DELETE_PACKAGES_OP,
    DeleteDatasetConfig,
    DeletePackageRequest,
    DeletePackagesConfig,
)
from jobs_orchestration.defs.job_messages import SourceMessage
from jobs_orchestration.defs.storage.refresh import (
    storage_refresh_all_run_request,
    storage_refresh_run_request,
)
from jobs_orchestration.intake.handoff import JobBatch, ReceivedJob
from jobs_orchestration.intake.messages import (
    CachePopulationJob,
    DatasetChangelogEventJob,
    DeleteDatasetJob,
    DeletePackageJob,
)

DELETE_PACKAGE_JOB = "delete_package_job"
DELETE_DATASET_JOB = "delete_dataset_job"
DATASET_CHANGELOG_JOB = "dataset_changelog_job"
MAX_TAG_BYTES = 2000
"""Dagster's PostgreSQL run storage indexes each tag's key and value together in a btree, whose entries
hold at most 2,704 bytes: a run with a longer tag cannot be created, and its messages would come back
forever. The run config lists every message in full."""


def batch_tags(batch: JobBatch) -> dict[str, str]:
    """Only tags an operator filters runs by: the job family (also the run queue's limits), the
    messages' producer job ids (as many as a tag holds), and the organization and trace when the whole
    batch shares them. The job names the message type; the run config lists every message."""
    jobs = batch.jobs
    tags = {
        "job_family": jobs[0].job_family,
        "producer_job_ids": bounded_list([job.id for job in jobs]),
    }
    organizations = {job.organization_key for job in jobs}
    if len(organizations) == 1 and "all" not in organizations:
        tags["organization_id"] = organizations.pop()
    traces = {getattr(job, "trace_id", "") for job in jobs} - {""}
    if len(traces) == 1:
        tags["trace_id"] = bounded_list([traces.pop()])
    elif traces:
        tags["trace_ids"] = bounded_list(sorted(traces))
    return tags


def bounded_list(values: list[str]) -> str:
    """The values joined by commas, whole values only, as many as fit in `MAX_TAG_BYTES` with
    `+N more` for the rest."""
    joined = ",".join(values)
    if len(joined.encode()) <= MAX_TAG_BYTES:
        return joined
    room = MAX_TAG_BYTES - len(f",+{len(values)} more".encode())
    kept: list[str] = []
    for value in values:
        room -= len(value.encode()) + 1
        if room < 0:
            break
        kept.append(value)
    return ",".join([*kept, f"+{len(values) - len(kept)} more"])


def run_request_for(batch: JobBatch) -> dg.RunRequest:
    tags = batch_tags(batch)
    first = batch.jobs[0]
    sources = [source_of(member) for member in batch.members]
    if isinstance(first, DeletePackageJob):
        requests = [
            DeletePackageRequest(
                package_id=job.package_id,
                organization_id=job.organization_id,
                user_id=job.user_id,
                trace_id=job.trace_id,
                job_id=job.id,
                source=source,
            )
            for job, source in zip(batch.jobs, sources, strict=True)
            if isinstance(job, DeletePackageJob)  # a batch holds one job type (see handoff)
        ]
        config = dg.RunConfig(ops={DELETE_PACKAGES_OP: DeletePackagesConfig(requests=requests)})
        return dg.RunRequest(job_name=DELETE_PACKAGE_JOB, run_key=batch.run_key, run_config=config, tags=tags)
    if isinstance(first, DeleteDatasetJob):
        dataset_config = DeleteDatasetConfig(
            dataset_id=first.dataset_id,
            organization_id=first.organization_id,
            user_id=first.user_id,
            trace_id=first.trace_id,
            job_id=first.id,
            source=sources[0],
        )
        return dg.RunRequest(
            job_name=DELETE_DATASET_JOB,
            run_key=batch.run_key,
            run_config=dg.RunConfig(ops={DELETE_DATASET_OP: dataset_config}),
            tags=tags,
        )
    if isinstance(first, DatasetChangelogEventJob):
        messages = [
            changelog_message(job, source)
            for job, source in zip(batch.jobs, sources, strict=True)
            if isinstance(job, DatasetChangelogEventJob)
        ]
        return dg.RunRequest(
            job_name=DATASET_CHANGELOG_JOB,
            run_key=batch.run_key,
            run_config=dg.RunConfig(
                ops={RECORD_CHANGELOG_EVENTS_OP: ChangelogEventsConfig(messages=messages)}
            ),
            tags=tags,
        )
    if isinstance(first, CachePopulationJob):
        # A batch holds one organization and one dry-run flag (see handoff.batches): repeats collapse.
        if first.organization_id is not None:
            return storage_refresh_run_request(
                first.organization_id,
                dry_run=first.dry_run,
                run_key=batch.run_key,
                tags=tags,
                sources=sources,
            )
        return storage_refresh_all_run_request(
            dry_run=first.dry_run, run_key=batch.run_key, tags=tags, sources=sources
        )
    raise TypeError(f"no route for {type(first).__name__}")


def source_of(member: ReceivedJob) -> SourceMessage:
    return SourceMessage(message_id=member.message_id, body=member.body)


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
