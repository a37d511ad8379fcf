"""Materialization metadata of the storage assets: the same keys whether one organization was refreshed
alone or within a batch, so the UI's plots stay continuous."""

from __future__ import annotations

import dagster as dg

from jobs_orchestration.storage_totals import Level, OrganizationTotals
from jobs_orchestration.units import readable_bytes

ASSET_KEYS = {
    Level.PACKAGE: dg.AssetKey("package_storage"),
    Level.DATASET: dg.AssetKey("dataset_storage"),
    Level.ORGANIZATION: dg.AssetKey("organization_storage"),
}


def level_metadata(
    totals: OrganizationTotals,
    level: Level,
    *,
    duration_seconds: float,
    organizations_in_batch: int = 1,
    organization_name: str | None = None,
) -> dict[str, dg.RawMetadataValue]:
    figures = totals.levels[level]
    return {
        "organization_id": dg.MetadataValue.text(str(totals.organization_id)),
        # Dynamic partitions carry no metadata of their own in this Dagster version: the name goes here.
        "organization_name": dg.MetadataValue.text(organization_name or ""),
        "total_bytes": dg.MetadataValue.int(figures.total_bytes),
        "total_size": dg.MetadataValue.text(readable_bytes(figures.total_bytes)),
        **{name: dg.MetadataValue.int(count) for name, count in figures.counts.items()},
        "rows_changed": dg.MetadataValue.int(figures.rows_changed),
        "dry_run": totals.dry_run,
        "duration_seconds": dg.MetadataValue.float(round(duration_seconds, 3)),
        "organizations_in_batch": dg.MetadataValue.int(organizations_in_batch),
    }


def storage_events(
    totals: OrganizationTotals,
    *,
    duration_seconds: float,
    organizations_in_batch: int = 1,
    organization_name: str | None = None,
) -> list[dg.AssetMaterialization | dg.AssetObservation]:
    """One event per level refreshed, on the organization's partition: a materialization when the
    cache was written, an observation for a dry run (the cache was not)."""
    event_class = dg.AssetObservation if totals.dry_run else dg.AssetMaterialization
    return [
        event_class(
            asset_key=ASSET_KEYS[level],
            partition=str(totals.organization_id),
            metadata=level_metadata(
                totals,
                level,
                duration_seconds=duration_seconds,
                organizations_in_batch=organizations_in_batch,
                organization_name=organization_name,
            ),
        )
        for level in totals.levels
    ]
