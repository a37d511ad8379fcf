"""Storage totals of packages, datasets and organizations: set-based SQL, no Dagster."""

from jobs_orchestration.storage_totals.refresh import (
    ALL_LEVELS,
    DEFAULT_BATCH_SIZE,
    DEFAULT_PARALLEL_BATCHES,
    MAX_PARALLEL_BATCHES,
    BatchResult,
    Level,
    LevelTotals,
    OrganizationTotals,
    UnknownOrganization,
    organization_names,
    refresh_all_organizations,
    refresh_organizations,
    refresh_storage,
)

__all__ = [
    "ALL_LEVELS",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_PARALLEL_BATCHES",
    "MAX_PARALLEL_BATCHES",
    "BatchResult",
    "Level",
    "LevelTotals",
    "OrganizationTotals",
    "UnknownOrganization",
    "organization_names",
    "refresh_all_organizations",
    "refresh_organizations",
    "refresh_storage",
]
