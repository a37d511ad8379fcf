"""Alerts: every failed run is published to the alerts topic (`run_failure_alert_sensor`); dead letters
are alerted on by `dead_letter_queue_sensor` (defs/intake/dead_letter_queue.py)."""

from __future__ import annotations

import dagster as dg

from jobs_orchestration.alerts import run_failure_alert
from jobs_orchestration.defs.intake.failed_runs import WILL_RETRY_TAG, last_error_of
from jobs_orchestration.defs.resources import AlertsResource


@dg.run_failure_sensor(
    name="run_failure_alert_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Publishes every failed run of this code location to the alerts topic (ALERTS_TOPIC_ARN; "
    "only logged when unset): job, run id, organization, error and a link to the run.",
)
def run_failure_alert_sensor(context: dg.RunFailureSensorContext, alerts: AlertsResource) -> None:
    run = context.dagster_run
    alert = run_failure_alert(
        job_name=run.job_name,
        run_id=run.run_id,
        error=last_error_of(context.instance, run.run_id),
        webserver_url=alerts.webserver_url,
        organization_id=run.tags.get("organization_id"),
        organization_name=run.tags.get("organization_name"),
        will_retry=run.tags.get(WILL_RETRY_TAG) == "true",
    )
    # An alert SNS refuses fails this evaluation: the error and the alert's text are in the tick's log.
    alerts.send(alert, context.log)


defs = dg.Definitions(sensors=[run_failure_alert_sensor])
