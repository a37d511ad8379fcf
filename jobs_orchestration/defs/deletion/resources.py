"""Settings of the deletion jobs that are not shared with other domains."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from jobs_orchestration.progress import REPORT_INTERVAL_SECONDS


class DeletionSettings(dg.ConfigurableResource):
    """Where time-series range objects live, how many S3 batches run at once, how often progress shows."""

    timeseries_bucket: str = Field(description="Bucket of the time-series range objects (TIMESERIES_BUCKET)")
    parallel_deletes: int = Field(
        default=8, ge=1, le=32, description="DeleteObjects batches in flight at once within one run"
    )
    progress_interval_seconds: float = Field(
        default=REPORT_INTERVAL_SECONDS,
        ge=0,
        description="Report a deletion's progress (the run's log and its progress tag) at most this often",
    )
