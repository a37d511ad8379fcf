"""`failed_run_messages_sensor`: a run that failed for good gives its job messages back.

The intake deleted a message from the queue once its run existed; if that run then fails after all
its retries (a step failed for good, or its worker was killed once more than run retries allow), the
messages it held would be forgotten. This sensor sends their original bodies to the dead-letter queue,
with the run id and the error as attributes, so `jobs-orchestration dlq redrive` replays them once the
cause is fixed. Messages the run had already dead-lettered itself (a poison member) are not sent again.

A plain sensor with its own cursor rather than a run-failure sensor: Dagster's run-status sensors move
their cursor past a run even when the evaluation raised, and a failed run whose messages the
dead-letter queue did not take must be tried again on the next tick.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field

import dagster as dg

from jobs_orchestration.defs.job_messages import (
    dead_letter_observation,
    dead_lettered_by_run_family,
    sources_in,
)
from jobs_orchestration.defs.resources import SQSResource
from jobs_orchestration.intake.dead_letters import DeadLetter, send_dead_letters

WILL_RETRY_TAG = "dagster/will_retry"
RETRY_DECISION_GRACE_SECONDS = 60.0
"""Dagster tags a failed run with whether it will be retried just after the failure is stored; a run
still untagged this long after it failed will not be."""
RUNS_PER_TICK = 200
OVERLAP_SECONDS = 5.0
"""Each query looks this far behind the last run handled, so runs stored with the same timestamp are
not skipped; `recent` keeps them from being handled twice."""
REMEMBERED_RUNS = 1000
ERROR_CHARS = 1000


@dataclass
class _Cursor:
    updated_after: float = 0.0
    pending: dict[str, float] = field(default_factory=dict)
    """Failed runs whose messages are not on the dead-letter queue yet -> when first seen."""
    recent: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, text: str | None) -> _Cursor:
        if not text:
            return cls(updated_after=time.time() - OVERLAP_SECONDS)
        data = json.loads(text)
        return cls(data["updated_after"], dict(data["pending"]), list(data["recent"]))

    def dump(self) -> str:
        recent = self.recent[-REMEMBERED_RUNS:]
        return json.dumps({"updated_after": self.updated_after, "pending": self.pending, "recent": recent})


@dg.sensor(
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Sends the job messages of a run that failed for good (after its retries) to the "
    "dead-letter queue, with the run id and the error, so they can be redriven once the cause is fixed.",
)
def failed_run_messages_sensor(context: dg.SensorEvaluationContext, sqs: SQSResource) -> dg.SensorResult:
    cursor = _Cursor.load(context.cursor)
    now = time.time()
    recent = set(cursor.recent)
    records = context.instance.get_run_records(
        filters=dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.FAILURE],
            updated_after=dt.datetime.fromtimestamp(cursor.updated_after - OVERLAP_SECONDS, dt.UTC),
        ),
        limit=RUNS_PER_TICK,
        order_by="update_timestamp",
        ascending=True,
    )
    for record in records:
        cursor.updated_after = max(cursor.updated_after, record.update_timestamp.timestamp())
        if record.dagster_run.run_id not in recent:
            cursor.pending.setdefault(record.dagster_run.run_id, now)
            cursor.recent.append(record.dagster_run.run_id)

    observations: list[dg.AssetObservation] = []
    sent, errors = 0, []
    for run_id, first_seen in list(cursor.pending.items()):
        run = context.instance.get_run_by_id(run_id)
        decision = _retry_decision(context.instance, run, now - first_seen)
        if decision == "undecided":
            continue
        if decision == "retried" or run is None:
            del cursor.pending[run_id]
            continue
        letters = _letters(context.instance, run)
        outcome = send_dead_letters(sqs.get_intake_client(), sqs.dead_letter_queue_url, letters)
        observations.extend(dead_letter_observation(letter) for letter in outcome.sent)
        sent += len(outcome.sent)
        if not outcome.all_sent:
            errors.extend(outcome.errors)
            break  # the run stays pending; what was sent is not sent again (it is in `observations`)
        if letters:
            context.log.warning(f"run {run_id} failed for good: {len(letters)} message(s) dead-lettered")
        del cursor.pending[run_id]
    for error in errors:
        context.log.error(f"{error}; the run's messages are sent again on the next tick")
    if sent:
        skip_reason = None
    elif errors:
        skip_reason = "the dead-letter queue did not answer; failed runs' messages wait for the next tick"
    else:
        skip_reason = "no failed run holds job messages"
    return dg.SensorResult(cursor=cursor.dump(), asset_events=observations, skip_reason=skip_reason)


def _retry_decision(instance: dg.DagsterInstance, run: dg.DagsterRun | None, waited: float) -> str:
    """'retried' (a retry run takes its messages on), 'final', or 'undecided' (not tagged yet)."""
    if run is None:
        return "retried"
    will_retry = run.tags.get(WILL_RETRY_TAG)
    if will_retry == "true":
        return "retried"
    if will_retry == "false" or not instance.run_retries_enabled or waited > RETRY_DECISION_GRACE_SECONDS:
        return "final"
    return "undecided"


def _letters(instance: dg.DagsterInstance, run: dg.DagsterRun) -> list[DeadLetter]:
    sources = sources_in(run.run_config)
    if not sources:
        return []
    already = dead_lettered_by_run_family(instance, run)
    reason = f"run {run.run_id} of {run.job_name} failed for good: {last_error_of(instance, run.run_id)}"
    return [
        DeadLetter(source.message_id, source.body, reason, dead_lettered_by="run_failure", run_id=run.run_id)
        for source in sources
        if source.message_id not in already
    ]


def last_error_of(instance: dg.DagsterInstance, run_id: str) -> str:
    """The last step failure's error, or the run failure's message (a killed worker has no step failure)."""
    for event_type in (dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE):
        records = instance.get_records_for_run(run_id, of_type=event_type, ascending=False, limit=1).records
        if not records:
            continue
        entry = records[0].event_log_entry
        event = entry.dagster_event
        error = getattr(event.event_specific_data, "error", None) if event is not None else None
        text = error.message if error is not None else (event.message if event is not None else entry.message)
        return (text or "no error recorded").strip()[:ERROR_CHARS]
    return "no error recorded"
