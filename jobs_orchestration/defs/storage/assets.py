"""The storage cache as three assets partitioned per organization: package → dataset → organization.

Each asset writes its table for its organization in one transaction, reading the level below from the
cache the upstream asset just wrote. A dry run computes every level at once in the first asset that
runs, records the figures as observations (nothing was materialized) and produces no output, so the
assets downstream are skipped rather than run twice.
"""

import time
from collections.abc import Iterator
from typing import Any

import dagster as dg

from jobs_orchestration import settings
from jobs_orchestration.defs.resources import PlatformDatabase
from jobs_orchestration.defs.retries import retry_only_transient_errors
from jobs_orchestration.defs.storage.config import StorageTotalsConfig
from jobs_orchestration.defs.storage.metadata import level_metadata, storage_events
from jobs_orchestration.defs.storage.partitions import organizations
from jobs_orchestration.storage_totals import (
    ALL_LEVELS,
    Level,
    UnknownOrganization,
    organization_names,
    refresh_organizations,
)
from jobs_orchestration.units import readable_bytes

STORAGE_GROUP = "storage"
STORAGE_POOL = "platform_db"
ORGANIZATION_NAME_TAG = "organization_name"


def organization_id_of(partition_key: str) -> int:
    try:
        organization_id = int(partition_key)
    except ValueError:
        organization_id = 0
    if organization_id <= 0 or str(organization_id) != partition_key:
        raise dg.Failure(
            f"partition key {partition_key!r}: not an organization id (a positive integer)",
            allow_retries=False,
        )
    return organization_id


def _refresh(
    context: dg.AssetExecutionContext,
    config: StorageTotalsConfig,
    platform_db: PlatformDatabase,
    level: Level,
) -> Iterator[dg.MaterializeResult]:
    organization_id = organization_id_of(context.partition_key)
    started = time.perf_counter()
    with retry_only_transient_errors():
        try:
            totals = refresh_organizations(
                platform_db.engine,
                [organization_id],
                levels=ALL_LEVELS if config.dry_run else [level],
                dry_run=config.dry_run,
            )[organization_id]
        except UnknownOrganization as error:
            raise dg.Failure(str(error), allow_retries=False) from error
    duration = time.perf_counter() - started
    with platform_db.engine.connect() as connection:
        name = organization_names(connection, [organization_id]).get(organization_id, "")
    if name:
        # The run is one organization's: its name beside the id in the runs list (filterable).
        context.instance.add_run_tags(context.run.run_id, {ORGANIZATION_NAME_TAG: name})
    if config.dry_run:
        for event in storage_events(totals, duration_seconds=duration, organization_name=name):
            context.log_event(event)
        context.log.info(
            f"Dry run for organization {organization_id} ({name}): {readable_bytes(totals.total_bytes)}, "
            f"{totals.rows_changed} cache rows would change; nothing written"
        )
        return
    yield dg.MaterializeResult(
        metadata=level_metadata(totals, level, duration_seconds=duration, organization_name=name)
    )


_COMMON: dict[str, Any] = dict(
    partitions_def=organizations,
    group_name=STORAGE_GROUP,
    pool=STORAGE_POOL,
    output_required=False,
    kinds=set(filter(None, [settings.database_kind(settings.load_settings().jobs_database_url)])),
)


@dg.asset(**_COMMON, description="Each package's storage in bytes, descendants included (package_storage)")
def package_storage(
    context: dg.AssetExecutionContext, config: StorageTotalsConfig, platform_db: PlatformDatabase
) -> Iterator[dg.MaterializeResult]:
    yield from _refresh(context, config, platform_db, Level.PACKAGE)


@dg.asset(
    **_COMMON,
    deps=[package_storage],
    description="Each dataset's storage: the sum of its root packages (dataset_storage)",
)
def dataset_storage(
    context: dg.AssetExecutionContext, config: StorageTotalsConfig, platform_db: PlatformDatabase
) -> Iterator[dg.MaterializeResult]:
    yield from _refresh(context, config, platform_db, Level.DATASET)


@dg.asset(
    **_COMMON,
    deps=[dataset_storage],
    description="The organization's storage: the sum of its datasets that are not DELETING (organization_storage)",
)
def organization_storage(
    context: dg.AssetExecutionContext, config: StorageTotalsConfig, platform_db: PlatformDatabase
) -> Iterator[dg.MaterializeResult]:
    yield from _refresh(context, config, platform_db, Level.ORGANIZATION)


storage_assets = [package_storage, dataset_storage, organization_storage]
