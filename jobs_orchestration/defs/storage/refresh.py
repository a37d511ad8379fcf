"""Run requests that refresh storage totals: what the SQS sensor and the deletion jobs use to ask for
fresh figures without knowing how the storage assets are built."""

from __future__ import annotations

from collections.abc import Mapping

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
CHANGED_ORGANIZATIONS_TAG = "storage/changed_organizations"
"""Organization ids, comma-separated, whose stored data a run changed: when the run succeeds,
`storage_refresh_after_deletion_sensor` refreshes each one's totals. Any job that changes storage
tags its runs with it; the storage domain needs to know nothing else about the job."""


def changed_organizations_tag(organization_ids: set[int]) -> dict[str, str]:
    """The tag for a run that changed these organizations' data; no tag when it changed none."""
    if not organization_ids:
        return {}
    return {CHANGED_ORGANIZATIONS_TAG: ",".join(str(i) for i in sorted(organization_ids))}


def changed_organizations(tags: Mapping[str, str]) -> list[int]:
    value = tags.get(CHANGED_ORGANIZATIONS_TAG, "")
    return sorted({int(part) for part in value.split(",") if part.strip()})


def storage_refresh_run_request(
    organization_id: int | None,
    *,
    dry_run: bool = False,
    run_key: str | None = None,
    tags: dict[str, str] | None = None,
    sources: list[SourceMessage] | None = None,
) -> dg.RunRequest:
    """One organization's totals (its partition of the storage assets), or with None every
    organization's, in batched runs (a CachePopulationJob without an organization)."""
    config = StorageTotalsConfig(dry_run=dry_run, sources=sources or [])
    if organization_id is None:
        return dg.RunRequest(
            job_name=STORAGE_TOTALS_JOB,
            run_key=run_key,
            run_config=dg.RunConfig(ops={REFRESH_ALL_ORGANIZATIONS_OP: config}),
            tags={**STORAGE_TAGS, **(tags or {})},
        )
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
