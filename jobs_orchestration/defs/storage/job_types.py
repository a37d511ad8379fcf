"""The storage job type the SQS sensor serves: a CachePopulationJob refreshes one organization's
partition (`storage_refresh_job`), or every organization (`storage_totals_job`)."""

from __future__ import annotations

import dagster as dg

from jobs_orchestration.defs.intake.routing import RunBatch, SqsJobType
from jobs_orchestration.defs.storage.jobs import storage_refresh_job, storage_totals_job
from jobs_orchestration.defs.storage.refresh import (
    storage_refresh_run_request,
)
from jobs_orchestration.intake.messages import CACHE_POPULATION, CachePopulationJob


def cache_population_run(batch: RunBatch[CachePopulationJob]) -> dg.RunRequest:
    # A batch holds one organization and one dry-run flag (`CACHE_POPULATION.group`): repeats collapse.
    first = batch.first
    return storage_refresh_run_request(
        first.organization_id,
        dry_run=first.dry_run,
        run_key=batch.run_key,
        tags=batch.tags,
        sources=batch.sources,
    )


SQS_JOB_TYPES: list[SqsJobType] = [
    SqsJobType(CACHE_POPULATION, [storage_refresh_job, storage_totals_job], cache_population_run)
]
