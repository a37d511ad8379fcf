"""Which run each batch of job messages becomes. Each job type the sensor serves is declared once,
as an `SqsJobType` beside its jobs (`defs/<domain>/job_messages.py`): its core `JobType` (message model
and batching rule), the jobs its runs are of, and how a batch becomes a run request (job, run config
per the contracts in `defs/*/config.py`, and the tags set here)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Generic

import dagster as dg

from jobs_orchestration.defs.job_messages import SourceMessage
from jobs_orchestration.intake.handoff import JobBatch, ReceivedJob
from jobs_orchestration.intake.job_types import JobType, ModelT

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


@dataclass(frozen=True)
class RunBatch(Generic[ModelT]):
    """A batch as its job type's run request builder sees it: the messages' models and, in the same
    order, the messages as received (for the run config's `source`), with the run key and tags every
    run request of the intake carries."""

    jobs: list[ModelT]
    sources: list[SourceMessage]
    run_key: str
    tags: dict[str, str]

    @property
    def first(self) -> ModelT:
        return self.jobs[0]

    def members(self) -> Iterable[tuple[ModelT, SourceMessage]]:
        return zip(self.jobs, self.sources, strict=True)


@dataclass(frozen=True)
class SqsJobType(Generic[ModelT]):
    """A job type the SQS sensor turns into runs."""

    job_type: JobType[ModelT]
    jobs: Sequence[dg.JobDefinition | dg.UnresolvedAssetJobDefinition]
    """The jobs its run requests name (the sensor's job list is made of these)."""
    run_request: Callable[[RunBatch[ModelT]], dg.RunRequest]

    @property
    def name(self) -> str:
        return self.job_type.name

    def routed_to(
        self, jobs: Iterable[dg.JobDefinition | dg.UnresolvedAssetJobDefinition]
    ) -> SqsJobType[ModelT]:
        """The same job type run by other jobs of the same names (stand-ins, in tests and benchmarks)."""
        by_name = {job.name: job for job in jobs}
        return replace(self, jobs=[by_name[job.name] for job in self.jobs])


def router(job_types: Sequence[SqsJobType]) -> Callable[[JobBatch], dg.RunRequest]:
    """The run request for a batch; a batch of a job type not in `job_types` raises `LookupError` (the
    intake dead-letters it, naming the type)."""
    by_name = {job_type.name: job_type for job_type in job_types}

    def run_request_for(batch: JobBatch) -> dg.RunRequest:
        job_type = by_name.get(batch.type_name)
        if job_type is None:
            raise LookupError(f"no job of this code location takes {batch.type_name}")
        sources = [source_of(member) for member in batch.members]
        return job_type.run_request(RunBatch(batch.jobs, sources, batch.run_key, batch_tags(batch)))

    return run_request_for


def source_of(member: ReceivedJob) -> SourceMessage:
    return SourceMessage(message_id=member.message_id, body=member.body)
