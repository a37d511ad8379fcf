"""`sqs_jobs_sensor`: every job message on the queue becomes a run, acknowledged only once the run
exists (the hand-off logic is in `jobs_orchestration.intake.handoff`)."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence

import dagster as dg

from jobs_orchestration.defs.intake.routing import SqsJobType, router
from jobs_orchestration.defs.resources import SQSResource
from jobs_orchestration.defs.storage.partitions import ORGANIZATIONS, organizations
from jobs_orchestration.intake.dead_letter_summary import reason_group
from jobs_orchestration.intake.handoff import IntakeLimits, QueueIntake, TickResult
from jobs_orchestration.intake.messages import JOB_TYPES
from jobs_orchestration.settings import DEFAULTS, Settings, load_settings


def limits_from_settings(current: Settings) -> IntakeLimits:
    """The intake's limits with the batch sizes the settings give; `IntakeLimits`' own where unset."""
    sizes = {
        "batch_size": current.jobs_intake_batch_size,
        "changelog_batch_size": current.jobs_intake_changelog_batch_size,
    }
    return IntakeLimits(**{name: size for name, size in sizes.items() if size is not None})


SENSOR_NAME = "sqs_jobs_sensor"
JOB_QUEUE_ASSET = dg.AssetSpec(
    "job_queue",
    description="The SQS queue the platform's services send job messages to; observed by the intake "
    "whenever a figure changed, and at least once a minute",
    group_name="intake",
)
OBSERVE_AT_LEAST_EVERY_SECONDS = 60
"""An intake tick whose figures equal the last observation's records none, unless this long has passed:
an idle queue gets a point a minute in the UI's plots instead of one every tick."""
OBSERVED = "observed"
"""The sensor's own key in the intake's cursor: the last observation's figures and time."""
UNCOMPARED_FIGURES = ("tick_seconds",)


def build_sqs_jobs_sensor(
    job_types: Sequence[SqsJobType],
    *,
    limits: IntakeLimits | None = None,
    minimum_interval_seconds: int = DEFAULTS.jobs_intake_interval_seconds,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
) -> dg.SensorDefinition:
    """The sensor over the declared job types (see `jobs_orchestration.defs.intake.job_types`); a
    message of a type the intake accepts but none of these serves is dead-lettered. Without `limits`,
    each tick takes them from the settings as they are when it starts."""
    for job_type in job_types:
        if JOB_TYPES.get(job_type.name) is not job_type.job_type:
            raise ValueError(
                f"{job_type.name} is not a job type the intake accepts: declare it in "
                "jobs_orchestration.intake.messages.JOB_TYPES"
            )
    jobs = {job.name: job for job_type in job_types for job in job_type.jobs}
    run_request_for = router(job_types)

    @dg.sensor(
        name=SENSOR_NAME,
        jobs=list(jobs.values()),
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=(
            "Turns job messages on the SQS queue into runs; deletes a message only once its run exists, "
            "dead-letters messages that cannot be parsed."
        ),
    )
    def sqs_jobs_sensor(context: dg.SensorEvaluationContext, sqs: SQSResource) -> dg.SensorResult:
        tick_limits = limits or limits_from_settings(load_settings())
        intake = QueueIntake(sqs.get_intake_client(), sqs.queue_url, sqs.dead_letter_queue_url, tick_limits)

        def run_exists(run_key: str) -> bool:
            runs = context.instance.get_run_ids(
                filters=dg.RunsFilter(tags={"dagster/run_key": run_key}), limit=1
            )
            return bool(runs)

        intake_cursor, last_observed = split_cursor(context.cursor)
        result = intake.tick(intake_cursor, run_exists, run_request_for)
        for dead in result.dead_letters:
            context.log.warning(f"message {dead.message_id} moved to the dead-letter queue: {dead.reason}")
        for error in result.errors:
            context.log.error(error)
        observation = queue_observation(result)
        observed = observation_due(observation, last_observed, time.time())
        return dg.SensorResult(
            run_requests=result.requests,
            cursor=join_cursor(result.cursor, observed or last_observed),
            dynamic_partitions_requests=new_organization_partitions(context, result),
            asset_events=[observation] if observed else [],
            skip_reason=None if result.requests else skip_reason(result),
        )

    return sqs_jobs_sensor


def skip_reason(result: TickResult) -> str:
    """Why a tick asked for no run, in words an operator scanning the tick history can act on."""
    parts = []
    if result.dead_letters:
        reasons = Counter(reason_group(letter.reason) for letter in result.dead_letters)
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
    new = sorted(key for key in keys if not context.instance.has_dynamic_partition(ORGANIZATIONS, key))
    return [organizations.build_add_request(new)] if new else []


def split_cursor(cursor: str | None) -> tuple[str | None, dict | None]:
    """The intake's cursor without the sensor's own key, and that key's value."""
    try:
        data = json.loads(cursor) if cursor else None
    except ValueError:
        return cursor, None
    if not isinstance(data, dict) or OBSERVED not in data:
        return cursor, None
    observed = data.pop(OBSERVED)
    return json.dumps(data, separators=(",", ":")), observed if isinstance(observed, dict) else None


def join_cursor(intake_cursor: str, observed: dict | None) -> str:
    if observed is None:
        return intake_cursor
    data = json.loads(intake_cursor)
    data[OBSERVED] = observed
    return json.dumps(data, separators=(",", ":"))


def observation_due(observation: dg.AssetObservation, last: dict | None, now: float) -> dict | None:
    """The figures to remember when the observation is to be recorded (a figure changed, or a minute
    passed since the last one), else None."""
    figures = {
        name: value.value for name, value in observation.metadata.items() if name not in UNCOMPARED_FIGURES
    }
    if (
        last
        and last.get("figures") == figures
        and now - float(last.get("at", 0)) < OBSERVE_AT_LEAST_EVERY_SECONDS
    ):
        return None
    return {"figures": figures, "at": now}


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
