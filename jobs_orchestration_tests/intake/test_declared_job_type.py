"""A job type declared in this module, not in the project, goes from a queue message to a successful run
through the real sensor: a message model with its batching rule, a job, and the run request a batch
becomes are all it takes."""

import json
from typing import ClassVar

import dagster as dg
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from jobs_orchestration.cli import main
from jobs_orchestration.db.platform import JobAuditLog, Organization
from jobs_orchestration.defs.intake.routing import RunBatch, SqsJobType
from jobs_orchestration.defs.intake.sensor import build_sqs_jobs_sensor
from jobs_orchestration.defs.job_messages import SourceMessage
from jobs_orchestration.devstack.aws import LocalAws
from jobs_orchestration.intake.handoff import IntakeLimits
from jobs_orchestration.intake.job_types import JobModel, JobType, RowId, by_organization
from jobs_orchestration.intake.messages import JOB_TYPES, job_body
from jobs_orchestration_tests.support.intake_jobs import INTAKE_JOB_TYPES
from jobs_orchestration_tests.support.queue import counts, dead_letters, send, sqs_resource


class InvoiceAgeingJob(JobModel):
    """Age one organization's open invoices as of a day."""

    type_name: ClassVar[str] = "InvoiceAgeingJob"
    job_family: ClassVar[str] = "email_parser"

    organization_id: RowId
    as_of: str

    stored_in: ClassVar[dict[str, sa.Column]] = {
        "organization_id": Organization.__table__.c.id,
        "id": JobAuditLog.__table__.c.job_id,
    }

    def business_ids(self) -> list[str]:
        return [f"org={self.organization_id}", f"as_of={self.as_of}"]


INVOICE_AGEING = JobType(InvoiceAgeingJob, group=by_organization, most_per_run=50)


class InvoiceAgeingConfig(dg.Config):
    organization_id: int
    days: list[str]
    sources: list[SourceMessage]


@dg.op
def age_invoices(config: InvoiceAgeingConfig) -> list[str]:
    return sorted(config.days)


@dg.job
def invoice_ageing_job() -> None:
    age_invoices()


def invoice_ageing_run(batch: RunBatch[InvoiceAgeingJob]) -> dg.RunRequest:
    config = InvoiceAgeingConfig(
        organization_id=batch.first.organization_id,
        days=[job.as_of for job in batch.jobs],
        sources=batch.sources,
    )
    return dg.RunRequest(
        job_name=invoice_ageing_job.name,
        run_key=batch.run_key,
        run_config=dg.RunConfig(ops={"age_invoices": config}),
        tags=batch.tags,
    )


SQS_INVOICE_AGEING = SqsJobType(INVOICE_AGEING, [invoice_ageing_job], invoice_ageing_run)


@pytest.fixture
def accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    """The intake accepts the toy type for this test only (the project's list is in `intake.messages`)."""
    monkeypatch.setitem(JOB_TYPES, INVOICE_AGEING.name, INVOICE_AGEING)


def tick(aws: LocalAws, instance: dg.DagsterInstance, sensor: dg.SensorDefinition, cursor: str | None = None):
    with dg.build_sensor_context(
        instance_ref=instance.get_ref(), resources={"sqs": sqs_resource(aws)}, cursor=cursor
    ) as context:
        return sensor(context)


def test_a_job_type_declared_here_goes_from_a_message_to_a_successful_run(local_aws, instance, accepted):
    send(
        local_aws,
        job_body(InvoiceAgeingJob, id="job-1", organization_id=7, as_of="2026-11-30"),
        job_body(InvoiceAgeingJob, id="job-2", organization_id=7, as_of="2026-12-01"),
        job_body(InvoiceAgeingJob, id="job-3", organization_id=8, as_of="2026-12-01"),
    )
    sensor = build_sqs_jobs_sensor(
        [*INTAKE_JOB_TYPES, SQS_INVOICE_AGEING], limits=IntakeLimits(wait_time_seconds=0)
    )

    first = tick(local_aws, instance, sensor)
    requests = sorted(first.run_requests, key=lambda request: request.tags["organization_id"])
    assert [(r.job_name, r.tags["organization_id"]) for r in requests] == [
        ("invoice_ageing_job", "7"),
        ("invoice_ageing_job", "8"),
    ]
    assert requests[0].run_key.startswith("InvoiceAgeingJob:")
    assert requests[0].tags["job_family"] == "email_parser"
    assert requests[0].tags["producer_job_ids"] == "job-1,job-2"

    runs = [
        invoice_ageing_job.execute_in_process(
            run_config=request.run_config,
            instance=instance,
            tags={**request.tags, "dagster/run_key": request.run_key},
        )
        for request in requests
    ]
    assert all(run.success for run in runs)
    assert runs[0].output_for_node("age_invoices") == ["2026-11-30", "2026-12-01"]

    tick(local_aws, instance, sensor, first.cursor)
    assert counts(local_aws, local_aws.queue_url) == (0, 0)
    assert dead_letters(local_aws) == []


def test_a_message_no_sensor_job_takes_is_dead_lettered_naming_its_type(local_aws, instance, accepted):
    send(local_aws, job_body(InvoiceAgeingJob, id="job-1", organization_id=7, as_of="2026-11-30"))
    sensor = build_sqs_jobs_sensor(INTAKE_JOB_TYPES, limits=IntakeLimits(wait_time_seconds=0))

    assert not tick(local_aws, instance, sensor).run_requests
    (letter,) = dead_letters(local_aws)
    assert "cannot route InvoiceAgeingJob: LookupError" in letter["reason"]


def test_a_sensor_refuses_a_job_type_the_intake_does_not_accept():
    with pytest.raises(ValueError, match="InvoiceAgeingJob is not a job type the intake accepts"):
        build_sqs_jobs_sensor([SQS_INVOICE_AGEING])


def test_the_command_line_enqueues_a_declared_job_type_with_no_code_of_its_own(local_aws, instance, accepted):
    result = CliRunner().invoke(
        main, ["enqueue", "job", "InvoiceAgeingJob", "organizationId=7", "asOf=2026-11-30", "id=job-1"]
    )
    assert result.exit_code == 0, result.output
    sensor = build_sqs_jobs_sensor([SQS_INVOICE_AGEING], limits=IntakeLimits(wait_time_seconds=0))
    (request,) = tick(local_aws, instance, sensor).run_requests
    (source,) = request.run_config["ops"]["age_invoices"]["config"]["sources"]
    assert json.loads(source["body"]) == {
        "InvoiceAgeingJob": {"id": "job-1", "organizationId": 7, "asOf": "2026-11-30"}
    }

    refused = CliRunner().invoke(main, ["enqueue", "job", "InvoiceAgeingJob", "organizationId=0"])
    assert refused.exit_code != 0
    assert "field organizationId: Input should be greater than 0" in refused.output
    assert "field asOf is missing" in refused.output
