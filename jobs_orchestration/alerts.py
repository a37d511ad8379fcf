"""Alerts to the people who run the jobs: a run that failed, job messages on the dead-letter queue.

An alert is published to an SNS topic (`ALERTS_TOPIC_ARN`): its subscribers (e-mail, a chat
integration, a pager) decide who hears it. The body is plain text a person reads; message attributes
(`alert_kind`, `job_name`, `run_id`, `organization_id`) let a subscription filter. With no topic
configured an alert is only logged, and the log line says it was not sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from jobs_orchestration.intake.dead_letter_summary import DeadLetterSummary
from jobs_orchestration.units import readable_duration

SUBJECT_PREFIX = "[jobs-orchestration]"
MAX_SUBJECT_CHARS = 100
"""SNS refuses a longer subject, or one with line breaks or non-ASCII characters."""
MAX_ERROR_CHARS = 2000
_NOT_SUBJECT_SAFE = re.compile(r"[^\x20-\x7e]+")


@dataclass(frozen=True)
class Alert:
    kind: str
    """`run_failure` or `dead_letters`."""
    subject: str
    text: str
    attributes: dict[str, str] = field(default_factory=dict)


def run_link(webserver_url: str, run_id: str) -> str:
    return f"{webserver_url.rstrip('/')}/runs/{run_id}"


def asset_link(webserver_url: str, asset_name: str) -> str:
    return f"{webserver_url.rstrip('/')}/assets/{asset_name}"


def run_failure_alert(
    *,
    job_name: str,
    run_id: str,
    error: str,
    webserver_url: str,
    organization_id: str | None = None,
    organization_name: str | None = None,
    will_retry: bool = False,
) -> Alert:
    organization = organization_id or "none (not one organization's run)"
    if organization_id and organization_name:
        organization = f"{organization_id} ({organization_name})"
    lines = [
        f"Run of {job_name} failed.",
        f"Job: {job_name}",
        f"Run id: {run_id}",
        f"Organization: {organization}",
        f"Error: {error.strip()[:MAX_ERROR_CHARS] or 'no error recorded'}",
        f"Run: {run_link(webserver_url, run_id)}",
    ]
    if will_retry:
        lines.append(
            "Dagster retries this run (its worker died); another alert follows if the retry fails too."
        )
    subject = f"{job_name} failed" + (f" (organization {organization_id})" if organization_id else "")
    attributes = {"alert_kind": "run_failure", "job_name": job_name, "run_id": run_id}
    if organization_id:
        attributes["organization_id"] = organization_id
    return Alert("run_failure", subject, "\n".join(lines), attributes)


def dead_letter_alert(summary: DeadLetterSummary, *, new: int, now: float, webserver_url: str) -> Alert:
    lines = [
        f"{summary.depth} job message(s) are on the dead-letter queue, {new} new since the last alert; "
        f"the oldest is {readable_duration(summary.oldest_age_seconds(now))} old.",
        "By reason:",
        summary.reasons_text(),
        "Inspect them with `jobs-orchestration dlq list`; once the cause is fixed, replay them with the "
        "redrive_dead_letters_job (launchpad) or `jobs-orchestration dlq redrive`.",
        f"Queue: {asset_link(webserver_url, 'dead_letter_queue')}",
    ]
    subject = f"{new} new dead letter(s), {summary.depth} on the queue"
    return Alert("dead_letters", subject, "\n".join(lines), {"alert_kind": "dead_letters"})


def subject_line(alert: Alert) -> str:
    text = _NOT_SUBJECT_SAFE.sub(" ", f"{SUBJECT_PREFIX} {alert.subject}").strip()
    return text if len(text) <= MAX_SUBJECT_CHARS else text[: MAX_SUBJECT_CHARS - 3] + "..."


def publish_alert(client: Any, topic_arn: str, alert: Alert) -> str:
    """Publish to the topic; returns SNS's message id."""
    response = client.publish(
        TopicArn=topic_arn,
        Subject=subject_line(alert),
        Message=alert.text,
        MessageAttributes={
            name: {"DataType": "String", "StringValue": value}
            for name, value in alert.attributes.items()
            if value
        },
    )
    return response["MessageId"]
