from __future__ import annotations

from dagster_aws.utils import ResourceWithBoto3Configuration

from jobs_orchestration.defs.resources.aws import boto3_client
from jobs_orchestration.snapshots.store import SnapshotStore, open_snapshot_store


class SnapshotStoreResource(ResourceWithBoto3Configuration):
    """Where the Email Parser's snapshot files live, named by `SNAPSHOT_STORAGE_URL`."""

    url: str

    def get_store(self) -> SnapshotStore:
        return open_snapshot_store(self.url, s3_client_factory=lambda: boto3_client(self, "s3"))
