"""Fixtures of the deletion tests: platform rows with objects in moto, and the deletion jobs run in
process against the test's PostgreSQL database and moto server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dagster as dg
import pytest
from dagster_aws.s3 import S3Resource

from jobs_orchestration.defs.deletion.config import (
    DELETE_DATASET_OP,
    DELETE_PACKAGES_OP,
    DeleteDatasetConfig,
    DeletePackageRequest,
    DeletePackagesConfig,
)
from jobs_orchestration.defs.deletion.jobs import delete_dataset_job, delete_package_job
from jobs_orchestration.defs.deletion.resources import DeletionSettings
from jobs_orchestration.defs.job_messages import SourceMessage
from jobs_orchestration.devstack.aws import TIMESERIES_BUCKET
from jobs_orchestration_tests.support.platform_data import PlatformData
from jobs_orchestration_tests.support.queue import sqs_resource


@pytest.fixture
def s3(local_aws) -> Any:
    return local_aws.client("s3")


@pytest.fixture
def data(platform_db, s3) -> PlatformData:
    return PlatformData(platform_db.engine, s3)


@pytest.fixture
def deletion_resources(platform_db, local_aws) -> dict[str, Any]:
    return {
        "platform_db": platform_db,
        "s3": S3Resource(endpoint_url=local_aws.endpoint_url, region_name=local_aws.region),
        "deletion": DeletionSettings(timeseries_bucket=TIMESERIES_BUCKET, parallel_deletes=4),
        "sqs": sqs_resource(local_aws),
    }


def queue_source(kind: str, resource_id: int) -> SourceMessage:
    """What a run started by the intake carries for each request: the job message it came in."""
    return SourceMessage(message_id=f"message-{kind}-{resource_id}", body=f'{{"{kind}": {resource_id}}}')


@pytest.fixture
def delete_packages(deletion_resources, instance) -> Callable[..., dg.ExecuteInProcessResult]:
    """Run delete_package_job for (package_id, organization_id) pairs: as launched from the UI, or with
    `from_queue` as the intake starts it (each request with its job message)."""

    def run(
        *requests: tuple[int, int], dry_run: bool = False, from_queue: bool = False
    ) -> dg.ExecuteInProcessResult:
        config = DeletePackagesConfig(
            requests=[
                DeletePackageRequest(
                    package_id=package_id,
                    organization_id=organization_id,
                    user_id="N:user:tester",
                    trace_id=f"trace-{package_id}",
                    job_id=f"job-{package_id}",
                    source=queue_source("package", package_id) if from_queue else None,
                )
                for package_id, organization_id in requests
            ],
            dry_run=dry_run,
        )
        return delete_package_job.execute_in_process(
            run_config=dg.RunConfig(ops={DELETE_PACKAGES_OP: config}),
            resources=deletion_resources,
            instance=instance,
            raise_on_error=False,
        )

    return run


@pytest.fixture
def delete_dataset(deletion_resources, instance) -> Callable[..., dg.ExecuteInProcessResult]:
    def run(
        dataset_id: int, organization_id: int, *, dry_run: bool = False, from_queue: bool = False
    ) -> dg.ExecuteInProcessResult:
        config = DeleteDatasetConfig(
            dataset_id=dataset_id,
            organization_id=organization_id,
            user_id="N:user:tester",
            trace_id="trace-dataset",
            job_id="job-dataset",
            dry_run=dry_run,
            source=queue_source("dataset", dataset_id) if from_queue else None,
        )
        return delete_dataset_job.execute_in_process(
            run_config=dg.RunConfig(ops={DELETE_DATASET_OP: config}),
            resources=deletion_resources,
            instance=instance,
            raise_on_error=False,
        )

    return run
