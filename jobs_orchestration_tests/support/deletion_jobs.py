"""Small stand-ins named like the deletion jobs, with their run-config contract, so sensors watching
for deletion runs can be tested with real runs before the real jobs exist."""

import dagster as dg

from jobs_orchestration.defs.deletion.config import (
    DELETE_DATASET_OP,
    DELETE_PACKAGES_OP,
    DeleteDatasetConfig,
    DeletePackagesConfig,
)


@dg.op(name=DELETE_PACKAGES_OP)
def delete_packages(config: DeletePackagesConfig) -> None:
    pass


@dg.op(name=DELETE_DATASET_OP)
def delete_dataset(config: DeleteDatasetConfig) -> None:
    pass


@dg.job(name="delete_package_job")
def delete_package_job():
    delete_packages()


@dg.job(name="delete_dataset_job")
def delete_dataset_job():
    delete_dataset()


@dg.job(name="some_other_job")
def some_other_job():
    delete_dataset()
