"""The deletion job types the SQS sensor serves: which run a batch of their messages becomes."""

from __future__ import annotations

from typing import Any

import dagster as dg

from jobs_orchestration.defs.deletion.config import (
    DELETE_DATASET_OP,
    DELETE_PACKAGES_OP,
    DeleteDatasetConfig,
    DeletePackageRequest,
    DeletePackagesConfig,
)
from jobs_orchestration.defs.deletion.jobs import delete_dataset_job, delete_package_job
from jobs_orchestration.defs.intake.routing import RunBatch, SqsJobType
from jobs_orchestration.defs.job_messages import SourceMessage
from jobs_orchestration.intake.messages import (
    DELETE_DATASET,
    DELETE_PACKAGE,
    DeleteDatasetJob,
    DeletePackageJob,
)


def _requested_by(job: DeletePackageJob | DeleteDatasetJob, source: SourceMessage) -> dict[str, Any]:
    """The fields every deletion request carries besides its target."""
    return {
        "organization_id": job.organization_id,
        "user_id": job.user_id,
        "trace_id": job.trace_id,
        "job_id": job.id,
        "source": source,
    }


def delete_packages_run(batch: RunBatch[DeletePackageJob]) -> dg.RunRequest:
    requests = [
        DeletePackageRequest(package_id=job.package_id, **_requested_by(job, source))
        for job, source in batch.members()
    ]
    return dg.RunRequest(
        job_name=delete_package_job.name,
        run_key=batch.run_key,
        run_config=dg.RunConfig(ops={DELETE_PACKAGES_OP: DeletePackagesConfig(requests=requests)}),
        tags=batch.tags,
    )


def delete_dataset_run(batch: RunBatch[DeleteDatasetJob]) -> dg.RunRequest:
    # One dataset per run (`DELETE_DATASET.most_per_run`).
    job, source = batch.first, batch.sources[0]
    config = DeleteDatasetConfig(dataset_id=job.dataset_id, **_requested_by(job, source))
    return dg.RunRequest(
        job_name=delete_dataset_job.name,
        run_key=batch.run_key,
        run_config=dg.RunConfig(ops={DELETE_DATASET_OP: config}),
        tags=batch.tags,
    )


SQS_JOB_TYPES: list[SqsJobType] = [
    SqsJobType(DELETE_PACKAGE, [delete_package_job], delete_packages_run),
    SqsJobType(DELETE_DATASET, [delete_dataset_job], delete_dataset_run),
]
