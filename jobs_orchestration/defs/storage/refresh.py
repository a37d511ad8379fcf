"""Run requests that refresh storage totals: what the SQS sensor and the deletion jobs use to ask for
fresh figures without knowing how the storage assets are built."""

from __future__ import annotations

import dagster as dg

from jobs_orchestration.defs.job_messages import SourceMessage
from jobs_orchestration.defs.storage.config import StorageTotalsConfig

STORAGE_ASSETS = ("package_storage", "dataset_storage", "organization_storage")
STORAGE_REFRESH_JOB = "storage_refresh_job"
"""Materializes the three storage assets for one organization's partition."""
STORAGE_TOTALS_JOB = "storage_totals_job"
"""Refreshes every organization, many per run, each recorded as its own partition."""
REFRESH_ALL_ORGANIZATIONS_OP = "refresh_all_organizations"
"""The op of `storage_totals_job`; its config is StorageTotalsConfig plus `organizations_per_batch`."""
STORAGE_TAGS = {"job_family": "storage"}


def storage_refresh_run_request(
    organization_id: int,
    *,
    dry_run: bool = False,
    run_key: str | None = None,
    tags: dict[str, str] | None = None,
    sources: list[SourceMessage] | None = None,
) -> dg.RunRequest:
    config = StorageTotalsConfig(dry_run=dry_run, sources=sources or [])
    return dg.RunRequest(
        job_name=STORAGE_REFRESH_JOB,
        partition_key=str(organization_id),
        run_key=run_key,
        run_config=dg.RunConfig(ops={asset: config for asset in STORAGE_ASSETS}),
        tags={
            **STORAGE_TAGS,
            "organization_id": str(organization_id),
            "storage_organization": str(organization_id),
            **(tags or {}),
        },
    )


def storage_refresh_all_run_request(
    dry_run: bool = False,
    run_key: str | None = None,
    tags: dict[str, str] | None = None,
    sources: list[SourceMessage] | None = None,
) -> dg.RunRequest:
    """A CachePopulationJob without an organization: every organization, in batched runs."""
    config = StorageTotalsConfig(dry_run=dry_run, sources=sources or [])
    return dg.RunRequest(
        job_name=STORAGE_TOTALS_JOB,
        run_key=run_key,
        run_config=dg.RunConfig(ops={REFRESH_ALL_ORGANIZATIONS_OP: config}),
        tags={**STORAGE_TAGS, **(tags or {})},
    )
