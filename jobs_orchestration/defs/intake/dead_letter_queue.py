"""The `dead_letter_queue` asset in the UI: observed with its depth, the age of its oldest message and the
count per reason; checked (`dead_letter_queue_is_empty`: fails with severity ERROR while it holds
messages); alerted on when new dead letters arrive; emptied by `redrive_dead_letters_job`.

`dead_letter_queue_sensor` reads the queue without consuming it (see
`jobs_orchestration.intake.dead_letter_summary`) every minute and records an observation and a check
evaluation when a figure changed, or every `REPORT_EVERY_SECONDS` anyway so the age stays current.
The check can also be run on demand from the UI: it reads the queue the same way.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

import dagster as dg

from jobs_orchestration.alerts import dead_letter_alert
from jobs_orchestration.connectivity import is_unreachable
from jobs_orchestration.defs.job_messages import DEAD_LETTER_QUEUE_ASSET
from jobs_orchestration.defs.resources import AlertsResource, SQSResource
from jobs_orchestration.failures import describe
from jobs_orchestration.intake.dead_letter_summary import DeadLetterSummary, summarize_dead_letter_queue
from jobs_orchestration.units import readable_duration

CHECK_NAME = "dead_letter_queue_is_empty"
SENSOR_INTERVAL_SECONDS = 60
REPORT_EVERY_SECONDS = 900
"""An unchanged queue is still observed this often, so its oldest message's age and the check's last
evaluation stay current."""


def queue_metadata(summary: DeadLetterSummary, now: float) -> dict[str, dg.RawMetadataValue]:
    age = summary.oldest_age_seconds(now)
    return {
        "depth": dg.MetadataValue.int(summary.depth),
        "visible": dg.MetadataValue.int(summary.visible),
        "in_flight": dg.MetadataValue.int(summary.in_flight),
        "oldest_age_seconds": dg.MetadataValue.float(round(age, 1)),
        "oldest_age": dg.MetadataValue.text(readable_duration(age) if summary.depth else "empty"),
        "peeked": dg.MetadataValue.int(summary.peeked),
        "by_reason": dg.MetadataValue.json(summary.by_reason),
        "by_dead_lettered_by": dg.MetadataValue.json(summary.by_dead_lettered_by),
    }


def check_description(summary: DeadLetterSummary, now: float) -> str:
    if not summary.depth:
        return "The dead-letter queue is empty."
    return (
        f"{summary.depth} job message(s) on the dead-letter queue, the oldest "
        f"{readable_duration(summary.oldest_age_seconds(now))} old.\n{summary.reasons_text()}\n"
        "Replay them with redrive_dead_letters_job once the cause is fixed."
    )


def queue_observation(summary: DeadLetterSummary, now: float) -> dg.AssetObservation:
    return dg.AssetObservation(asset_key=DEAD_LETTER_QUEUE_ASSET.key, metadata=queue_metadata(summary, now))


def queue_check_evaluation(summary: DeadLetterSummary, now: float) -> dg.AssetCheckEvaluation:
    return dg.AssetCheckEvaluation(
        asset_key=DEAD_LETTER_QUEUE_ASSET.key,
        check_name=CHECK_NAME,
        passed=summary.depth == 0,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata=queue_metadata(summary, now),
        description=check_description(summary, now),
    )


@dg.asset_check(
    asset=DEAD_LETTER_QUEUE_ASSET.key,
    name=CHECK_NAME,
    description="Fails (severity ERROR) while the dead-letter queue holds messages. "
    "dead_letter_queue_sensor evaluates it every minute; it can also be run from here.",
)
def dead_letter_queue_is_empty(sqs: SQSResource) -> dg.AssetCheckResult:
    now = time.time()
    summary = summarize_dead_letter_queue(sqs.get_intake_client(), sqs.dead_letter_queue_url)
    evaluation = queue_check_evaluation(summary, now)
    return dg.AssetCheckResult(
        passed=evaluation.passed,
        severity=evaluation.severity,
        metadata=evaluation.metadata,
        description=evaluation.description,
    )


@dataclass
class _Cursor:
    reported_at: float = 0.0
    reported: str = ""
    """The figures last recorded (depth and counts per reason), to tell whether anything changed."""
    alerted_depth: int = 0
    alerted_newest: float | None = None
    """The newest message the last alert covered: messages sent after it are new."""

    @classmethod
    def load(cls, text: str | None) -> _Cursor:
        if not text:
            return cls()
        try:
            return cls(**json.loads(text))
        except (ValueError, TypeError):
            return cls()

    def dump(self) -> str:
        return json.dumps(asdict(self))


def _figures(summary: DeadLetterSummary) -> str:
    return json.dumps([summary.depth, summary.by_reason, summary.by_dead_lettered_by], sort_keys=True)


@dg.sensor(
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Observes the dead-letter queue (depth, oldest message's age, count per reason) without "
    "consuming it, evaluates dead_letter_queue_is_empty, and alerts when new dead letters arrive.",
)
def dead_letter_queue_sensor(
    context: dg.SensorEvaluationContext, sqs: SQSResource, alerts: AlertsResource
) -> dg.SensorResult:
    cursor = _Cursor.load(context.cursor)
    now = time.time()
    try:
        summary = summarize_dead_letter_queue(sqs.get_intake_client(), sqs.dead_letter_queue_url)
    except Exception as error:
        if not is_unreachable(error):
            raise
        context.log.error(f"the dead-letter queue could not be read: {describe(error)}")
        return dg.SensorResult(
            cursor=cursor.dump(), skip_reason="SQS did not answer; the next tick looks again"
        )

    events: list[dg.AssetObservation | dg.AssetCheckEvaluation] = []
    figures = _figures(summary)
    if figures != cursor.reported or now - cursor.reported_at >= REPORT_EVERY_SECONDS:
        events = [queue_observation(summary, now), queue_check_evaluation(summary, now)]
        cursor.reported, cursor.reported_at = figures, now

    new = max(summary.sent_after(cursor.alerted_newest), summary.depth - cursor.alerted_depth)
    alert_failed = ""
    if not summary.depth:
        cursor.alerted_depth, cursor.alerted_newest = 0, None
    elif new > 0:
        alert = dead_letter_alert(summary, new=new, now=now, webserver_url=alerts.webserver_url)
        try:
            alerts.send(alert, context.log)
        except Exception as error:
            # Logged by `send`; the cursor keeps the last alert's mark, so the next tick sends it again.
            alert_failed = (
                f"; the alert could not be published ({describe(error)}), the next tick tries again"
            )
        else:
            cursor.alerted_depth = summary.depth
            cursor.alerted_newest = max(summary.newest_sent_at or now, cursor.alerted_newest or 0.0)
    else:
        cursor.alerted_depth = min(cursor.alerted_depth, summary.depth)

    if summary.depth:
        skip_reason = f"{summary.depth} dead letter(s), {new if new > 0 else 'none'} new{alert_failed}"
    else:
        skip_reason = "the dead-letter queue is empty"
    return dg.SensorResult(asset_events=events, cursor=cursor.dump(), skip_reason=skip_reason)
