"""Settings of the deletion jobs that are not shared with other domains."""

from __future__ import annotations

import dagster as dg
from pydantic import Field


class DeletionSettings(dg.ConfigurableResource):
    """Where time-series range objects live and how many S3 batches run at once."""

    timeseries_bucket: str = Field(description="Bucket of the time-series range objects (TIMESERIES_BUCKET)")
    parallel_deletes: int = Field(
        default=8, ge=1, le=32, description="DeleteObjects batches in flight at once within one run"
    )
