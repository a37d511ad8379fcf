"""`changelog_outbox_sensor`: starts `changelog_outbox_job` when changelog rows wait unpublished."""

import datetime as dt

import dagster as dg

from jobs_orchestration.changelog.publish import count_stale_unpublished
from jobs_orchestration.defs.changelog.jobs import OutboxSweepConfig, changelog_outbox_job
from jobs_orchestration.defs.resources import PlatformDatabase

SWEEP_INTERVAL_SECONDS = 60
UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


@dg.sensor(
    job=changelog_outbox_job,
    minimum_interval_seconds=SWEEP_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Publishes changelog events left unpublished for over a minute (crash or SNS outage).",
)
def changelog_outbox_sensor(context: dg.SensorEvaluationContext, platform_db: PlatformDatabase):
    sweep = OutboxSweepConfig()
    recorded_before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=sweep.min_age_seconds)
    with platform_db.engine.connect() as connection:
        waiting = count_stale_unpublished(connection, recorded_before, sweep.max_publish_attempts)
    if not waiting:
        return dg.SkipReason("no changelog event waits to be published")
    running = context.instance.get_run_records(
        dg.RunsFilter(job_name=changelog_outbox_job.name, statuses=UNFINISHED), limit=1
    )
    if running:
        return dg.SkipReason(f"{waiting} event(s) wait; a sweep run is already under way")
    return dg.RunRequest(
        run_config=dg.RunConfig(ops={"publish_changelog_outbox": sweep}),
        tags={"job_family": "changelog"},
    )
