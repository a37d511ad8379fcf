"""Run config of the snapshot cleanup: the operator's controls."""

import os

import dagster as dg
from pydantic import Field

from jobs_orchestration import settings
from jobs_orchestration.progress import REPORT_INTERVAL_SECONDS
from jobs_orchestration.snapshots.cleanup import (
    DEFAULT_TOMBSTONE_RETENTION_DAYS,
    SAVINGS_WINDOW_DAYS,
    CleanupOptions,
)
from jobs_orchestration.snapshots.retention import DEFAULT_RETENTION_DAYS


class SnapshotCleanupConfig(dg.Config):
    dry_run: bool = Field(
        default=False, description="Count what would be deleted and report it; change nothing"
    )
    max_deletions: int = Field(
        default=100_000,
        description="Refuse the run, changing nothing, if it would delete more files than this "
        "(guards against a wrong clock or an emptied attachments table)",
    )
    batch_size: int = Field(default=5000, description="Rows marked, and files deleted, per batch")
    max_batches: int = Field(
        default=1000, description="Batches per run at most; a larger backlog is worked off over nights"
    )
    time_budget_seconds: float = Field(
        default=3600.0, description="Start no new batch after this many seconds"
    )
    delete_workers: int = Field(default=4, description="Batches whose files are deleted in parallel (1 to 8)")
    tombstone_retention_days: int | None = Field(
        default=DEFAULT_TOMBSTONE_RETENTION_DAYS,
        description="Days a deleted snapshot's row is kept after its file went (at least "
        f"{SAVINGS_WINDOW_DAYS}, for the storage savings); null keeps the rows for ever",
    )
    progress_interval_seconds: float = Field(
        default=REPORT_INTERVAL_SECONDS,
        ge=0,
        description="Report progress (the run's log, its progress tag, an observation) at most this often",
    )
    retention_days: int | None = Field(
        default=None,
        description=f"Days a parse-session snapshot is kept; default {settings.SNAPSHOT_RETENTION_DAYS} "
        f"or {DEFAULT_RETENTION_DAYS}",
    )

    def to_options(self) -> CleanupOptions:
        """The plain options; a bad value raises ValueError naming the field and the value."""
        return CleanupOptions(
            retention_days=self.retention_days or retention_days_from_environment(),
            batch_size=self.batch_size,
            dry_run=self.dry_run,
            max_deletions=self.max_deletions,
            max_batches=self.max_batches,
            time_budget_seconds=self.time_budget_seconds,
            delete_workers=self.delete_workers,
            tombstone_retention_days=self.tombstone_retention_days,
        )


def retention_days_from_environment() -> int:
    value = os.environ.get(settings.SNAPSHOT_RETENTION_DAYS, "").strip()
    if not value:
        return DEFAULT_RETENTION_DAYS
    try:
        days = int(value)
    except ValueError:
        days = 0
    if days < 1:
        raise ValueError(
            f"{settings.SNAPSHOT_RETENTION_DAYS}={value!r} must be a whole number of days, at least 1"
        )
    return days
