from __future__ import annotations

from collections.abc import Callable

import dagster as dg
import pytest

from jobs_orchestration.defs.intake.sensor import JOB_QUEUE_ASSET, build_sqs_jobs_sensor
from jobs_orchestration.devstack.aws import LocalAws
from jobs_orchestration.intake.handoff import IntakeLimits
from jobs_orchestration.resources import SQSResource
from jobs_orchestration_tests.support.intake_jobs import INTAKE_JOBS, STORAGE_ASSETS


def sqs_resource(aws: LocalAws) -> SQSResource:
    return SQSResource(
        queue_url=aws.queue_url,
        dead_letter_queue_url=aws.dead_letter_queue_url,
        endpoint_url=aws.endpoint_url,
        region_name=aws.region,
    )


def intake_definitions(aws: LocalAws, limits: IntakeLimits | None = None) -> dg.Definitions:
    sensor = build_sqs_jobs_sensor(INTAKE_JOBS, limits=limits or IntakeLimits(wait_time_seconds=0))
    return dg.Definitions(
        assets=[*STORAGE_ASSETS, JOB_QUEUE_ASSET],
        jobs=INTAKE_JOBS,
        sensors=[sensor],
        resources={"sqs": sqs_resource(aws)},
    )


TickFn = Callable[..., dg.SensorResult]


@pytest.fixture
def tick(local_aws: LocalAws, instance: dg.DagsterInstance) -> TickFn:
    """Evaluate one sensor tick against the moto queue; returns the SensorResult."""

    def evaluate(cursor: str | None = None, limits: IntakeLimits | None = None) -> dg.SensorResult:
        sensor = build_sqs_jobs_sensor(INTAKE_JOBS, limits=limits or IntakeLimits(wait_time_seconds=0))
        context = dg.build_sensor_context(
            instance_ref=instance.get_ref(), resources={"sqs": sqs_resource(local_aws)}, cursor=cursor
        )
        return sensor(context)

    return evaluate
