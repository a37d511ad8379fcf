"""Small real jobs with the names and op configs of the contracts, for testing the intake without the
domains that implement them. Each op returns its config so a test can see what a run received."""

import dagster as dg

from jobs_orchestration.defs.changelog.config import ChangelogEventsConfig
from jobs_orchestration.defs.deletion.config import DeleteDatasetConfig, DeletePackagesConfig
from jobs_orchestration.defs.intake.job_types import SQS_JOB_TYPES
from jobs_orchestration.defs.storage.config import StorageTotalsConfig
from jobs_orchestration.defs.storage.partitions import organizations


@dg.op
def delete_packages(config: DeletePackagesConfig) -> list[int]:
    return [request.package_id for request in config.requests]


@dg.op
def delete_dataset(config: DeleteDatasetConfig) -> int:
    return config.dataset_id


@dg.op
def record_changelog_events(config: ChangelogEventsConfig) -> int:
    return sum(len(message.events) for message in config.messages)


@dg.op
def refresh_all_organizations(config: StorageTotalsConfig) -> bool:
    return config.dry_run


@dg.job
def delete_package_job() -> None:
    delete_packages()


@dg.job
def delete_dataset_job() -> None:
    delete_dataset()


@dg.job
def dataset_changelog_job() -> None:
    record_changelog_events()


@dg.job
def storage_totals_job() -> None:
    refresh_all_organizations()


def _storage_asset(name: str) -> dg.AssetsDefinition:
    @dg.asset(name=name, partitions_def=organizations)
    def storage(config: StorageTotalsConfig) -> None:
        pass

    return storage


STORAGE_ASSETS = [
    _storage_asset(name) for name in ("package_storage", "dataset_storage", "organization_storage")
]
storage_refresh_job = dg.define_asset_job("storage_refresh_job", selection=STORAGE_ASSETS)

INTAKE_JOBS = [
    delete_package_job,
    delete_dataset_job,
    dataset_changelog_job,
    storage_totals_job,
    storage_refresh_job,
]

JOBS_BY_NAME = {job.name: job for job in INTAKE_JOBS}

INTAKE_JOB_TYPES = [job_type.routed_to(INTAKE_JOBS) for job_type in SQS_JOB_TYPES]
"""The real job type declarations, their runs made by these jobs."""


def create_run(instance: dg.DagsterInstance, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    """What the daemon does with a request: a run carrying its run key."""
    job = JOBS_BY_NAME[request.job_name]
    return job.execute_in_process(
        run_config=request.run_config,
        instance=instance,
        tags={**request.tags, "dagster/run_key": request.run_key},
        partition_key=request.partition_key,
    )
