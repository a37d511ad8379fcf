"""An SQS that accepts connections and never answers cannot hold an intake tick past its budget: the
tick gives up within seconds, acknowledges nothing, and keeps its pending acknowledgements."""

from __future__ import annotations

import json
import time

import dagster as dg

from jobs_orchestration.defs.intake.sensor import build_sqs_jobs_sensor
from jobs_orchestration.intake.handoff import IntakeLimits
from jobs_orchestration_tests.support.intake_jobs import INTAKE_JOB_TYPES
from jobs_orchestration_tests.support.queue import sqs_resource_at
from jobs_orchestration_tests.support.silent_endpoint import silent_endpoint

SENSOR_BUDGET_SECONDS = 60
"""What Dagster allows one sensor evaluation."""


@dg.op
def _nothing() -> None:
    pass


@dg.job
def _handed_off_job() -> None:
    _nothing()


def _tick_against(
    endpoint: str, instance: dg.DagsterInstance, cursor: str | None
) -> tuple[dg.SensorResult, float]:
    sqs = sqs_resource_at(endpoint)
    sensor = build_sqs_jobs_sensor(INTAKE_JOB_TYPES, limits=IntakeLimits())
    started = time.monotonic()
    with dg.build_sensor_context(instance=instance, resources={"sqs": sqs}, cursor=cursor) as context:
        result = sensor(context)
    return result, time.monotonic() - started


def test_a_tick_against_a_silent_sqs_ends_well_inside_the_sensor_budget(instance):
    with silent_endpoint() as endpoint:
        result, seconds = _tick_against(endpoint, instance, None)

    assert seconds < SENSOR_BUDGET_SECONDS / 2, seconds
    assert result.run_requests == []
    assert "SQS did not answer" in result.skip_reason.skip_message
    print(f"tick against a silent SQS (receive): {seconds:.1f} s")


def test_pending_acknowledgements_survive_a_silent_sqs(instance):
    pending = {"receipts": ["handle-1"], "members": ["k1"], "since": time.time()}
    cursor = json.dumps({"version": 1, "pending": {"run-key-1": pending}, "handed_off": []})
    # The run exists, so the tick tries to delete the message and meets the silence.
    instance.create_run_for_job(_handed_off_job, tags={"dagster/run_key": "run-key-1"})

    with silent_endpoint() as endpoint:
        result, seconds = _tick_against(endpoint, instance, cursor)

    assert seconds < SENSOR_BUDGET_SECONDS / 2, seconds
    assert json.loads(result.cursor)["pending"]["run-key-1"]["receipts"] == ["handle-1"]
    print(f"tick against a silent SQS (acknowledge): {seconds:.1f} s")
