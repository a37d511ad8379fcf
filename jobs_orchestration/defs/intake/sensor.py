"""`sqs_jobs_sensor`: every job message on the queue becomes a run, acknowledged only once the run
exists (the hand-off logic is in `jobs_orchestration.intake.handoff`)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence

import dagster as dg

from jobs_orchestration import settings
from jobs_orchestration.defs.intake.routing import run_request_for
from jobs_orchestration.defs.storage.partitions import organizations
from jobs_orchestration.intake.handoff import IntakeLimits, QueueIntake, TickResult
from jobs_orchestration.resources import SQSResource


DEFAULT_INTERVAL_SECONDS = 5


def limits_from_environment() -> IntakeLimits:
    batch_size = _positive_whole_number(settings.JOBS_INTAKE_BATCH_SIZE)
    return IntakeLimits() if batch_size is None else IntakeLimits(batch_size=batch_size)


def interval_from_environment() -> int:
    return _positive_whole_number(settings.JOBS_INTAKE_INTERVAL_SECONDS) or DEFAULT_INTERVAL_SECONDS


def _positive_whole_number(variable: str) -> int | None:
    # Not secrets: reading them when the code location loads is fine, and they show in the definitions.
    text = os.environ.get(variable, "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{variable} must be a positive whole number, got {text!r}")
    return int(text)


SENSOR_NAME = "sqs_jobs_sensor"
JOB_QUEUE_ASSET = dg.AssetSpec(
    "job_queue",
    description="The SQS queue the platform's services send job messages to; observed on every intake tick",
    group_name="intake",
)


def build_sqs_jobs_sensor(
    jobs: Sequence[dg.JobDefinition | dg.UnresolvedAssetJobDefinition],
    *,
    limits: IntakeLimits | None = None,
    minimum_interval_seconds: int = DEFAULT_INTERVAL_SECONDS,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
) -> dg.SensorDefinition:
    limits = limits or IntakeLimits()

    @dg.sensor(
        name=SENSOR_NAME,
        jobs=list(jobs),
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=(
            "Turns job messages on the SQS queue into runs; deletes a message only once its run exists, "
            "dead-letters messages that cannot be parsed."
        ),
    )
    def sqs_jobs_sensor(context: dg.SensorEvaluationContext, sqs: SQSResource) -> dg.SensorResult:
        intake = QueueIntake(sqs.get_intake_client(), sqs.queue_url, sqs.dead_letter_queue_url, limits)

        def run_exists(run_key: str) -> bool:
            runs = context.instance.get_run_ids(
                filters=dg.RunsFilter(tags={"dagster/run_key": run_key}), limit=1
            )
            return bool(runs)

        result = intake.tick(context.cursor, run_exists, run_request_for)
        for dead in result.dead_letters:
            context.log.warning(f"message {dead.message_id} moved to the dead-letter queue: {dead.reason}")
        for error in result.errors:
            context.log.error(error)
        return dg.SensorResult(
            run_requests=result.requests,
            cursor=result.cursor,
            dynamic_partitions_requests=new_organization_partitions(context, result),
            asset_events=[queue_observation(result)],
            skip_reason=None if result.requests else skip_reason(result),
        )

    return sqs_jobs_sensor


def skip_reason(result: TickResult) -> str:
    """Why a tick asked for no run, in words an operator scanning the tick history can act on."""
    parts = []
    if result.dead_letters:
        reasons = Counter(letter.reason[:120] for letter in result.dead_letters)
        summary = "; ".join(f"{count} × {reason}" for reason, count in reasons.most_common(3))
        parts.append(f"{len(result.dead_letters)} message(s) dead-lettered ({summary})")
    if result.unreachable:
        parts.append("SQS did not answer; nothing was acknowledged, the next tick tries again")
    elif result.errors:
        parts.append(f"{len(result.errors)} error(s), the first: {result.errors[0][:300]}")
    return "; ".join(parts) or "no new job messages"


def new_organization_partitions(
    context: dg.SensorEvaluationContext, result: TickResult[dg.RunRequest]
) -> list[dg.AddDynamicPartitionsRequest]:
    """Storage refreshes target an organization's partition; add the ones not known yet (and only
    those: the daemon checks each requested key)."""
    keys = {request.partition_key for request in result.requests if request.partition_key}
    new = sorted(key for key in keys if not context.instance.has_dynamic_partition(organizations.name, key))
    return [organizations.build_add_request(new)] if new else []


def queue_observation(result: TickResult) -> dg.AssetObservation:
    metadata: dict[str, float] = {
        **result.queue_counts,
        "received": result.received,
        "runs_requested": len(result.requests),
        "acknowledged": result.acknowledged,
        "duplicates": result.duplicates,
        "dead_lettered": len(result.dead_letters),
        "errors": len(result.errors),
        "tick_seconds": round(result.seconds, 3),
    }
    return dg.AssetObservation(asset_key=JOB_QUEUE_ASSET.key, metadata=metadata)
