"""Checks of `organization_storage`, one result per organization partition.

`storage_refresh_job` runs them as steps after the organization's refresh; `storage_totals_job` refreshes
many organizations in one op and records the same checks' results on each organization's partition as
it goes (`storage_check_evaluations`), so after either job every refreshed partition shows its checks,
evaluated by the same code. Partitioned asset checks are a preview API in this Dagster version
(`PreviewWarning`); what they record is ordinary asset check evaluations.
"""

import warnings
from typing import Any

import dagster as dg

from jobs_orchestration.defs.resources import PlatformDatabase
from jobs_orchestration.defs.storage.assets import STORAGE_POOL, organization_id_of, organization_storage
from jobs_orchestration.defs.storage.partitions import organizations
from jobs_orchestration.storage_totals.consistency import OrganizationConsistency, check_organizations

MATCHES_DATASETS = "organization_storage_matches_its_datasets"
NOT_NEGATIVE = "storage_sizes_are_not_negative"


def _matches_datasets(figures: OrganizationConsistency) -> tuple[bool, dict[str, Any], str]:
    size = figures.size
    metadata: dict[str, Any] = {
        "organization_id": dg.MetadataValue.text(str(figures.organization_id)),
        "datasets_size": dg.MetadataValue.int(figures.datasets_size),
    }
    if size is not None:
        metadata["cached_size"] = dg.MetadataValue.int(size)
    if size is None:
        return False, metadata, "the organization has no organization_storage row"
    if figures.matches_datasets:
        return True, metadata, f"{size} bytes, the sum of its counted datasets"
    return False, metadata, f"cached {size} bytes, its counted datasets add up to {figures.datasets_size}"


def _not_negative(figures: OrganizationConsistency) -> tuple[bool, dict[str, Any], str]:
    metadata: dict[str, Any] = {
        "organization_id": dg.MetadataValue.text(str(figures.organization_id)),
        "negative_rows": dg.MetadataValue.int(figures.negative_rows),
        "sample": dg.MetadataValue.json(
            [{"table": row.table, "id": row.id, "size": row.size} for row in figures.negative_sample]
        ),
    }
    if not figures.negative_rows:
        return True, metadata, "no negative cached size"
    return False, metadata, f"{figures.negative_rows} cache row(s) with a negative size"


_CHECKS = {MATCHES_DATASETS: _matches_datasets, NOT_NEGATIVE: _not_negative}


def _missing(organization_id: int) -> OrganizationConsistency:
    """An organization deleted since its refresh: no row, nothing to add up."""
    return OrganizationConsistency(organization_id, None, 0)


def storage_check_evaluations(
    platform_db: PlatformDatabase, organization_ids: list[int]
) -> list[dg.AssetCheckEvaluation]:
    """Both checks' results for each organization, each on the organization's partition."""
    with platform_db.engine.connect() as connection:
        figures = check_organizations(connection, organization_ids)
    evaluations = []
    for organization_id in organization_ids:
        for check_name, evaluate in _CHECKS.items():
            passed, metadata, description = evaluate(
                figures.get(organization_id) or _missing(organization_id)
            )
            evaluations.append(
                dg.AssetCheckEvaluation(
                    asset_key=organization_storage.key,
                    check_name=check_name,
                    passed=passed,
                    metadata=metadata,
                    description=description,
                    severity=dg.AssetCheckSeverity.ERROR,
                    partition=str(organization_id),
                )
            )
    return evaluations


def _result(
    check_name: str, context: dg.AssetCheckExecutionContext, platform_db: PlatformDatabase
) -> dg.AssetCheckResult:
    organization_id = organization_id_of(context.partition_key)
    (evaluation,) = [
        e for e in storage_check_evaluations(platform_db, [organization_id]) if e.check_name == check_name
    ]
    return dg.AssetCheckResult(
        passed=evaluation.passed,
        metadata=evaluation.metadata,
        description=evaluation.description,
        severity=evaluation.severity,
    )


# The preview warning is said once, in this module's docstring, not on every load of the code location.
warnings.filterwarnings("ignore", "Specifying a partitions_def on an AssetCheckSpec", dg.PreviewWarning)


@dg.asset_check(
    asset=organization_storage,
    name=MATCHES_DATASETS,
    partitions_def=organizations,
    pool=STORAGE_POOL,
    description="The organization's cached size equals the sum of its datasets that are not DELETING",
)
def organization_storage_matches_its_datasets(
    context: dg.AssetCheckExecutionContext, platform_db: PlatformDatabase
) -> dg.AssetCheckResult:
    return _result(MATCHES_DATASETS, context, platform_db)


@dg.asset_check(
    asset=organization_storage,
    name=NOT_NEGATIVE,
    partitions_def=organizations,
    pool=STORAGE_POOL,
    description="None of the organization's package, dataset or organization cache rows has a negative size",
)
def storage_sizes_are_not_negative(
    context: dg.AssetCheckExecutionContext, platform_db: PlatformDatabase
) -> dg.AssetCheckResult:
    return _result(NOT_NEGATIVE, context, platform_db)


storage_checks = [organization_storage_matches_its_datasets, storage_sizes_are_not_negative]
