"""The storage jobs: one organization's partition per run, or every organization in batched runs."""

import time

import dagster as dg
from pydantic import Field

from jobs_orchestration.defs.resources import PlatformDatabase
from jobs_orchestration.defs.retries import OUTAGE_RETRY_POLICY, retry_only_transient_errors
from jobs_orchestration.defs.storage.assets import STORAGE_POOL, storage_assets
from jobs_orchestration.defs.storage.checks import storage_check_evaluations
from jobs_orchestration.defs.storage.config import StorageTotalsConfig
from jobs_orchestration.defs.storage.metadata import storage_events
from jobs_orchestration.defs.storage.partitions import ORGANIZATIONS
from jobs_orchestration.defs.storage.refresh import (
    REFRESH_ALL_ORGANIZATIONS_OP,
    STORAGE_REFRESH_JOB,
    STORAGE_TAGS,
    STORAGE_TOTALS_JOB,
)
from jobs_orchestration.storage_totals import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_PARALLEL_BATCHES,
    MAX_PARALLEL_BATCHES,
    BatchResult,
    organization_names,
    refresh_all_organizations,
)

storage_refresh_job = dg.define_asset_job(
    STORAGE_REFRESH_JOB,
    selection=dg.AssetSelection.assets(*storage_assets),
    description="Refresh the storage totals of one organization (one partition per run)",
    tags=STORAGE_TAGS,
    op_retry_policy=OUTAGE_RETRY_POLICY,
)


class AllOrganizationsConfig(StorageTotalsConfig):
    organizations_per_batch: int = Field(
        default=DEFAULT_BATCH_SIZE,
        ge=1,
        le=1000,
        description="Organizations refreshed together in one transaction",
    )
    parallel_batches: int = Field(
        default=DEFAULT_PARALLEL_BATCHES,
        ge=1,
        le=MAX_PARALLEL_BATCHES,
        description="Batches refreshed at once, each in its own transaction on its own connection",
    )


@dg.op(name=REFRESH_ALL_ORGANIZATIONS_OP, pool=STORAGE_POOL)
def refresh_all_organizations_op(
    context: dg.OpExecutionContext, config: AllOrganizationsConfig, platform_db: PlatformDatabase
) -> None:
    """Refresh every organization in batches. Each organization is still recorded on its own partition
    with its own figures (one event per asset and organization), which a multi-partition asset run
    could not do: it stamps one metadata set on every partition. The checks of `organization_storage`
    are evaluated for each organization refreshed and recorded on its partition, as the one-organization
    job does in its check steps."""
    known = set(context.instance.get_dynamic_partitions(ORGANIZATIONS))
    refreshed = changed = 0
    started = time.perf_counter()
    batches = refresh_all_organizations(
        platform_db.engine,
        dry_run=config.dry_run,
        batch_size=config.organizations_per_batch,
        parallel_batches=config.parallel_batches,
    )
    with retry_only_transient_errors():
        for batch in batches:
            _record_batch(context, batch, known, platform_db)
            changed += sum(totals.rows_changed for totals in batch.organizations)
            refreshed += len(batch.organizations)
    verb = "would change" if config.dry_run else "changed"
    context.log.info(
        f"Refreshed {refreshed} organizations in {time.perf_counter() - started:.1f} s; "
        f"{changed} cache rows {verb}"
    )


def _record_batch(
    context: dg.OpExecutionContext, batch: BatchResult, known: set[str], platform_db: PlatformDatabase
) -> None:
    """One event per asset and organization of the batch, on partitions that exist; then, unless it was
    a dry run (the cache did not change), the checks' results of each of its organizations."""
    new_keys = [str(t.organization_id) for t in batch.organizations if str(t.organization_id) not in known]
    if new_keys:
        # A materialization is only shown on a partition that exists.
        context.instance.add_dynamic_partitions(ORGANIZATIONS, new_keys)
        known.update(new_keys)
    ids = [totals.organization_id for totals in batch.organizations]
    with platform_db.engine.connect() as connection:
        names = organization_names(connection, ids)
    for totals in batch.organizations:
        for event in storage_events(
            totals,
            duration_seconds=batch.duration_seconds,
            organizations_in_batch=len(batch.organizations),
            organization_name=names.get(totals.organization_id),
        ):
            context.log_event(event)
    if ids and not batch.organizations[0].dry_run:
        for evaluation in storage_check_evaluations(platform_db, ids):
            # log_event records a check evaluation too; its annotation names only the older event types.
            context.log_event(evaluation)  # type: ignore[arg-type]


@dg.job(
    name=STORAGE_TOTALS_JOB,
    description="Refresh the storage totals of every organization, many per run",
    tags=STORAGE_TAGS,
    op_retry_policy=OUTAGE_RETRY_POLICY,
)
def storage_totals_job():
    refresh_all_organizations_op()


nightly_storage_totals = dg.ScheduleDefinition(
    name="nightly_storage_totals",
    job=storage_totals_job,
    cron_schedule="30 1 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Every organization's storage totals, nightly (off until an operator starts it)",
)
