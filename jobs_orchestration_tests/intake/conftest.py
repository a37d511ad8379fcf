from __future__ import annotations

from collections.abc import Callable

import dagster as dg
import pytest

from jobs_orchestration.defs.intake.sensor import JOB_QUEUE_ASSET, build_sqs_jobs_sensor
from jobs_orchestration.devstack.aws import LocalAws
from jobs_orchestration.intake.handoff import IntakeLimits
from jobs_orchestration_tests.support.intake_jobs import INTAKE_JOB_TYPES, INTAKE_JOBS, STORAGE_ASSETS
from jobs_orchestration_tests.support.queue import sqs_resource


def intake_definitions(aws: LocalAws, limits: IntakeLimits | None = None) -> dg.Definitions:
    sensor = build_sqs_jobs_sensor(INTAKE_JOB_TYPES, limits=limits or IntakeLimits(wait_time_seconds=0))
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
        sensor = build_sqs_jobs_sensor(INTAKE_JOB_TYPES, limits=limits or IntakeLimits(wait_time_seconds=0))
        # As a context manager, so the instance it opens from the ref is disposed of afterwards.
        with dg.build_sensor_context(
            instance_ref=instance.get_ref(), resources={"sqs": sqs_resource(local_aws)}, cursor=cursor
        ) as context:
            return sensor(context)

    return evaluate
