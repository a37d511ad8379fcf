"""Run config of the deletion jobs: what the SQS sensor hands them and what the launchpad shows."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from jobs_orchestration.defs.job_messages import SourceMessage


class DeletePackageRequest(dg.Config):
    """One DeletePackageJob message."""

    package_id: int = Field(description="The package to delete, with everything under it")
    organization_id: int = Field(description="The organization the package must belong to")
    user_id: str = Field(default="", description="Node id of the user who asked for the deletion")
    trace_id: str = Field(default="", description="Correlates logs across services")
    job_id: str = Field(default="", description="The producer's job id (empty for a launch from the UI)")
    source: SourceMessage | None = Field(
        default=None, description="The job message as received (none for a launch from the UI)"
    )


class DeletePackagesConfig(dg.Config):
    """Config of the first op of `delete_package_job`: one or more package deletions in one run."""

    requests: list[DeletePackageRequest]
    dry_run: bool = Field(default=False, description="Report what would be deleted, delete nothing")


class DeleteDatasetConfig(dg.Config):
    """Config of the first op of `delete_dataset_job`: one DeleteDatasetJob message."""

    dataset_id: int = Field(description="The dataset to delete, with all its packages")
    organization_id: int = Field(description="The organization the dataset must belong to")
    user_id: str = Field(default="", description="Node id of the user who asked for the deletion")
    trace_id: str = Field(default="", description="Correlates logs across services")
    job_id: str = Field(default="", description="The producer's job id (empty for a launch from the UI)")
    dry_run: bool = Field(default=False, description="Report what would be deleted, delete nothing")
    source: SourceMessage | None = Field(
        default=None, description="The job message as received (none for a launch from the UI)"
    )


DELETE_PACKAGES_OP = "delete_packages"
"""The op of `delete_package_job` that takes `DeletePackagesConfig`."""

DELETE_DATASET_OP = "delete_dataset"
"""The op of `delete_dataset_job` that takes `DeleteDatasetConfig`."""
