import dagster as dg
from pydantic import Field


class StorageTotalsConfig(dg.Config):
    dry_run: bool = Field(
        default=False,
        description="Compute and report the totals and the rows that would change; write nothing",
    )
