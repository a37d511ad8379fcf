"""The job that materializes `snapshot_cleanup`, and its nightly schedule.

The schedule fires at 03:00 in SNAPSHOT_CLEANUP_TIMEZONE, an IANA name such as "Europe/Oslo" (the
default) or "UTC", validated by `Settings`. 03:00 exists exactly once on every day in European and
American zones, so DST neither skips nor repeats the run. The name is read when the definitions load,
because a schedule's zone is part of its definition; it is not a secret.
"""

from __future__ import annotations

import dagster as dg

from jobs_orchestration.defs.retries import OUTAGE_RETRY_POLICY
from jobs_orchestration.defs.snapshots.assets import snapshot_cleanup
from jobs_orchestration.settings import load_settings

NIGHTLY_CRON = "0 3 * * *"

snapshot_cleanup_job = dg.define_asset_job(
    "snapshot_cleanup_job",
    selection=[snapshot_cleanup],
    description="One snapshot cleanup run; dagster.yaml lets one run of job_family=snapshot_cleanup "
    "go at a time",
    tags={"job_family": "snapshot_cleanup"},
    # A database outage is retried (both phases pick up where an interrupted run stopped); files that
    # could not be deleted are left to the next night's run.
    op_retry_policy=OUTAGE_RETRY_POLICY,
)


def nightly_schedule(timezone: str) -> dg.ScheduleDefinition:
    """The nightly schedule in the IANA zone named (`Settings` has checked the name)."""
    return dg.ScheduleDefinition(
        name="nightly_snapshot_cleanup",
        job=snapshot_cleanup_job,
        cron_schedule=NIGHTLY_CRON,
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Deletes expired parse-session snapshots every night at 03:00 local time",
    )


nightly_snapshot_cleanup = nightly_schedule(load_settings().snapshot_cleanup_timezone)
