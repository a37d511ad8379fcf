"""Sensors that keep the storage partitions and totals in step with the platform."""

import dagster as dg
import sqlalchemy as sa

from jobs_orchestration.defs.resources import PlatformDatabase
from jobs_orchestration.defs.storage.jobs import storage_refresh_job, storage_totals_job
from jobs_orchestration.defs.storage.partitions import ORGANIZATIONS, organizations
from jobs_orchestration.defs.storage.refresh import (
    CHANGED_ORGANIZATIONS_TAG,
    changed_organizations,
    storage_refresh_run_request,
)

FIRST_REFRESHES_PER_TICK = 50
"""More new organizations than this in one tick (a first deployment) get one all-organizations run
instead of a run each: hundreds of partitioned run requests would not fit in a tick's time budget."""


@dg.sensor(
    name="organizations_sensor",
    jobs=[storage_refresh_job, storage_totals_job],
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds a partition per new organization (and its first refresh), removes deleted ones",
)
def organizations_sensor(
    context: dg.SensorEvaluationContext, platform_db: PlatformDatabase
) -> dg.SensorResult:
    with platform_db.engine.connect() as connection:
        in_table = {str(i) for i in connection.execute(sa.text("SELECT id FROM organizations")).scalars()}
    # One diff per tick: each key in a partitions request costs the daemon a query, so only changes go.
    in_partitions = set(context.instance.get_dynamic_partitions(ORGANIZATIONS))
    added = sorted(in_table - in_partitions, key=int)
    removed = sorted(in_partitions - in_table)
    if not added and not removed:
        return dg.SensorResult(skip_reason="Partitions already match the organizations table")
    requests: list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest] = []
    if added:
        requests.append(organizations.build_add_request(added))
    if removed:
        requests.append(organizations.build_delete_request(removed))
    if len(added) > FIRST_REFRESHES_PER_TICK:
        run_requests = [
            storage_refresh_run_request(
                None, run_key=f"organizations-added:{added[0]}-{added[-1]}:{len(added)}"
            )
        ]
    else:
        run_requests = [
            storage_refresh_run_request(int(key), run_key=f"organization-added:{key}") for key in added
        ]
    context.log.info(f"Organizations added: {len(added)}, removed: {len(removed)}")
    return dg.SensorResult(dynamic_partitions_requests=requests, run_requests=run_requests)


@dg.run_status_sensor(
    name="storage_refresh_after_deletion_sensor",
    run_status=dg.DagsterRunStatus.SUCCESS,
    request_job=storage_refresh_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Refreshes the storage totals of the organizations a deletion run changed",
)
def storage_refresh_after_deletion_sensor(context: dg.RunStatusSensorContext):
    # No monitored_jobs: a run says itself which organizations it changed (its tag), so this domain
    # needs to know nothing of the jobs that delete.
    run = context.dagster_run
    organization_ids = changed_organizations(run.tags)
    if not organization_ids:
        return dg.SkipReason(
            f"Run {run.run_id} of {run.job_name} changed no organization's data (no {CHANGED_ORGANIZATIONS_TAG} tag)"
        )
    trace = {"trace_id": run.tags["trace_id"]} if "trace_id" in run.tags else {}
    return [
        storage_refresh_run_request(
            organization_id,
            run_key=f"{run.run_id}:{organization_id}",
            tags={**trace, "deletion_run_id": run.run_id},
        )
        for organization_id in organization_ids
    ]
