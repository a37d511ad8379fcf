"""Dagster resources: typed, configured from the environment, injected by parameter name."""

from jobs_orchestration.defs.resources.aws import AlertsResource, BoundedS3Resource, SNSResource, SQSResource
from jobs_orchestration.defs.resources.databases import (
    DatabaseResource,
    EmailParserDatabase,
    PlatformDatabase,
)
from jobs_orchestration.defs.resources.snapshot_store import SnapshotStoreResource

__all__ = [
    "AlertsResource",
    "BoundedS3Resource",
    "DatabaseResource",
    "EmailParserDatabase",
    "PlatformDatabase",
    "SNSResource",
    "SQSResource",
    "SnapshotStoreResource",
]
