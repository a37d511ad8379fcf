import dagster as dg
from pydantic import Field

from jobs_orchestration.defs.job_messages import SourceMessage


class StorageTotalsConfig(dg.Config):
    dry_run: bool = Field(
        default=False,
        description="Compute and report the totals and the rows that would change; write nothing",
    )
    sources: list[SourceMessage] = Field(
        default=[], description="The job messages that asked for this refresh (none for a launch from the UI)"
    )
