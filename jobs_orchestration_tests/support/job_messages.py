"""Job message bodies exactly as the platform's producers write them (design/messages.md)."""

from __future__ import annotations

import json
import uuid
from typing import Any

SQS_FIRED_JOBS = {
    "delete_package_job",
    "delete_dataset_job",
    "dataset_changelog_job",
    "storage_refresh_job",
    "storage_totals_job",
}
"""The jobs a message of each type (and a CachePopulationJob with and without an organization) starts."""


def body(type_name: str, **fields: Any) -> str:
    return json.dumps({type_name: fields})


def delete_package(package_id: int = 42, organization_id: int = 7, **extra: Any) -> str:
    return body(
        "DeletePackageJob",
        packageId=package_id,
        organizationId=organization_id,
        userId="N:user:3c1f",
        traceId=extra.pop("traceId", f"trace-{package_id}"),
        id=extra.pop("id", str(uuid.uuid4())),
        **extra,
    )


def delete_dataset(dataset_id: int = 13, organization_id: int = 7, **extra: Any) -> str:
    return body(
        "DeleteDatasetJob",
        datasetId=dataset_id,
        organizationId=organization_id,
        userId="N:user:3c1f",
        traceId=extra.pop("traceId", f"trace-d{dataset_id}"),
        id=extra.pop("id", str(uuid.uuid4())),
        **extra,
    )


def cache_population(organization_id: int | None = 7, dry_run: bool = False, **extra: Any) -> str:
    fields: dict[str, Any] = {
        "dryRun": dry_run,
        "id": extra.pop("id", str(uuid.uuid4())),
        "deleteRedisData": None,
    }
    if organization_id is not None:
        fields["organizationId"] = organization_id
    return body("CachePopulationJob", **fields, **extra)


UPDATE_NAME = {"eventType": "UPDATE_NAME", "eventDetail": {"oldName": "a", "newName": "b"}}


def changelog(
    dataset_id: int = 13, organization_id: int = 7, events: list | None = None, **extra: Any
) -> str:
    fields: dict[str, Any] = {
        "organizationId": organization_id,
        "datasetId": dataset_id,
        "userId": extra.pop("userId", "N:user:3c1f"),
        "traceId": extra.pop("traceId", f"trace-c{dataset_id}"),
        "id": extra.pop("id", str(uuid.uuid4())),
    }
    if events is not None:
        fields["events"] = events
    return body("DatasetChangelogEventJob", **fields, **extra)
