"""Run config of the deletion jobs: what the SQS sensor hands them and what the launchpad shows.

Ids are positive (the tables' serials, as the message contract says): a launch with the launchpad's
scaffolded zeros, or with no request, fails at once naming the field (`invalid_launch`), instead of
finding nothing and succeeding. The ops check it rather than pydantic constraints, which the step's
retry policy would retry for a minute."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from jobs_orchestration.defs.job_messages import SourceMessage


class DeletePackageRequest(dg.Config):
    """One DeletePackageJob message."""

    package_id: int = Field(description="The package to delete, with everything under it (a positive id)")
    organization_id: int = Field(description="The organization the package must belong to (a positive id)")
    user_id: str = Field(default="", description="Node id of the user who asked for the deletion")
    trace_id: str = Field(default="", description="Correlates logs across services")
    job_id: str = Field(default="", description="The producer's job id (empty for a launch from the UI)")
    source: SourceMessage | None = Field(
        default=None, description="The job message as received (none for a launch from the UI)"
    )


class DeletePackagesConfig(dg.Config):
    """Config of the first op of `delete_package_job`: one or more package deletions in one run."""

    requests: list[DeletePackageRequest] = Field(description="At least one package")
    dry_run: bool = Field(default=False, description="Report what would be deleted, delete nothing")


class DeleteDatasetConfig(dg.Config):
    """Config of the first op of `delete_dataset_job`: one DeleteDatasetJob message."""

    dataset_id: int = Field(description="The dataset to delete, with all its packages (a positive id)")
    organization_id: int = Field(description="The organization the dataset must belong to (a positive id)")
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


def invalid_launch(config: DeletePackagesConfig | DeleteDatasetConfig) -> str | None:
    """What is wrong with the ids of a launch, or None."""
    if isinstance(config, DeletePackagesConfig):
        if not config.requests:
            return "requests is empty: give at least one package_id and its organization_id"
        named = [
            (f"requests[{index}].{name}", getattr(request, name))
            for index, request in enumerate(config.requests)
            for name in ("package_id", "organization_id")
        ]
    else:
        named = [(name, getattr(config, name)) for name in ("dataset_id", "organization_id")]
    wrong = [f"{where} is {value}" for where, value in named if value <= 0]
    if wrong:
        return f"{'; '.join(wrong)}: ids are positive (fill in the ids of what to delete); nothing was done"
    return None
