"""The job that materializes `snapshot_cleanup`, and its nightly schedule.

The schedule fires at 03:00 in SNAPSHOT_CLEANUP_TIMEZONE, an IANA name such as "Europe/Oslo" (the
default) or "UTC". 03:00 exists exactly once on every day in European and American zones, so DST
neither skips nor repeats the run. The name is read when the definitions load, because a schedule's
zone is part of its definition; it is not a secret.
"""

from __future__ import annotations

import os
import zoneinfo

import dagster as dg

from jobs_orchestration import settings
from jobs_orchestration.defs.retries import OUTAGE_RETRY_POLICY
from jobs_orchestration.defs.snapshots.assets import snapshot_cleanup

DEFAULT_CLEANUP_TIMEZONE = "Europe/Oslo"
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


def cleanup_timezone(name: str | None) -> str:
    """The validated IANA zone name; empty means the default."""
    name = (name or "").strip() or DEFAULT_CLEANUP_TIMEZONE
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{settings.SNAPSHOT_CLEANUP_TIMEZONE}={name!r} is not an IANA time zone name "
            f"(for example {DEFAULT_CLEANUP_TIMEZONE!r} or 'UTC')"
        ) from None
    return name


def nightly_schedule(timezone: str) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="nightly_snapshot_cleanup",
        job=snapshot_cleanup_job,
        cron_schedule=NIGHTLY_CRON,
        execution_timezone=cleanup_timezone(timezone),
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Deletes expired parse-session snapshots every night at 03:00 local time",
    )


nightly_snapshot_cleanup = nightly_schedule(os.environ.get(settings.SNAPSHOT_CLEANUP_TIMEZONE, ""))
