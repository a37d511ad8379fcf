"""A run's tags fit what Dagster's PostgreSQL run storage can index, whatever the batch holds."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

import dagster as dg
import pytest
import yaml

from jobs_orchestration.db.platform import JobAuditLog
from jobs_orchestration.defs.intake.job_types import SQS_JOB_TYPES
from jobs_orchestration.defs.intake.routing import MAX_TAG_BYTES, bounded_list, router
from jobs_orchestration.intake.handoff import IntakeLimits, JobBatch, ReceivedJob
from jobs_orchestration.intake.messages import parse_job_message
from jobs_orchestration_tests.support import job_messages
from jobs_orchestration_tests.support.platform_data import PlatformData
from jobs_orchestration_tests.support.postgres import temporary_database
from jobs_orchestration_tests.support.queue import send, sqs_resource


@pytest.fixture
def postgres_instance() -> Iterator[dg.DagsterInstance]:
    with temporary_database("run_tags") as url, tempfile.TemporaryDirectory() as home:
        config = {"storage": {"postgres": {"postgres_url": url}}}
        with open(f"{home}/dagster.yaml", "w") as file:
            yaml.safe_dump(config, file)
        instance = dg.DagsterInstance.from_config(home)
        try:
            yield instance
        finally:
            instance.dispose()


def batch_of(bodies: list[str]) -> JobBatch:
    members = [
        ReceivedJob(parse_job_message(body), f"m{index}", [f"h{index}"], body)
        for index, body in enumerate(bodies)
    ]
    return JobBatch(members[0].job.type_name, members)


@dg.op
def nothing() -> None:
    pass


@dg.job
def stand_in_job() -> None:
    nothing()


@pytest.mark.integration
def test_a_full_batch_of_uuid_ids_and_long_traces_makes_a_run_on_postgres(postgres_instance):
    # Before the bound, 73 producer ids (UUIDs) in one tag were enough to make run creation fail.
    size = IntakeLimits().batch_size
    longest_trace = "t" * JobAuditLog.__table__.c.trace_id.type.length
    packages = batch_of(
        [job_messages.delete_package(package_id=i + 1, traceId=longest_trace) for i in range(size)]
    )
    changelog = batch_of(
        [
            job_messages.changelog(dataset_id=i + 1, traceId=f"trace-{i}-" + "x" * 40)
            for i in range(IntakeLimits().changelog_batch_size)
        ]
    )
    for batch in (packages, changelog):
        request = router(SQS_JOB_TYPES)(batch)
        assert all(len(value.encode()) <= MAX_TAG_BYTES for value in request.tags.values())
        run = postgres_instance.create_run_for_job(stand_in_job, tags=request.tags)
        assert postgres_instance.get_run_by_id(run.run_id).tags == request.tags
        listed = request.tags["producer_job_ids"].split(",")
        kept, rest = listed[:-1], listed[-1]
        assert kept == [job.id for job in batch.jobs][: len(kept)]
        assert rest == f"+{len(batch.jobs) - len(kept)} more"


def test_bounded_list_keeps_whole_values():
    assert bounded_list(["a", "b"]) == "a,b"
    values = [f"{i:04d}" + "x" * 95 for i in range(100)]  # 100 bytes each
    listed = bounded_list(values)
    assert len(listed.encode()) <= MAX_TAG_BYTES
    *kept, rest = listed.split(",")
    assert kept == values[: len(kept)] and len(kept) == 19
    assert rest == "+81 more"
    assert bounded_list(["é" * MAX_TAG_BYTES]) == "+1 more"


def test_a_deletion_run_carries_only_the_tags_operators_filter_by(
    project_env, platform_db, local_aws, instance
):
    # Imported late: the definitions read their environment variables when a run starts.
    from jobs_orchestration.definitions import defs
    from jobs_orchestration.defs.intake.definitions import sqs_jobs_sensor

    data = PlatformData(platform_db.engine, local_aws.client("s3"))
    organization = data.organization()
    package = data.package(data.dataset(organization), organization)
    send(local_aws, job_messages.delete_package(package, organization, id="job-1", traceId="trace-1"))
    with dg.build_sensor_context(
        instance_ref=instance.get_ref(), resources={"sqs": sqs_resource(local_aws)}, definitions=defs
    ) as context:
        (request,) = sqs_jobs_sensor(context).run_requests
    job = defs.resolve_job_def(request.job_name)

    # What the daemon adds to these (sensor name, run key, tick id) is Dagster's own.
    result = job.execute_in_process(run_config=request.run_config, instance=instance, tags=request.tags)

    assert result.success
    assert instance.get_run_by_id(result.run_id).tags == {
        "job_family": "deletion",  # the run queue's limit
        "dagster/retry_strategy": "ALL_STEPS",  # a crashed run is retried whole
        "producer_job_ids": "job-1",
        "organization_id": str(organization),
        "trace_id": "trace-1",
        "deletion/outcome": "deleted",
        "storage/changed_organizations": str(organization),  # what the storage refresh follows
    }
