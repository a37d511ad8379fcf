"""Run config of the snapshot cleanup: the operator's controls, with `CleanupOptions`' defaults."""

import dagster as dg
from pydantic import Field

from jobs_orchestration.progress import REPORT_INTERVAL_SECONDS
from jobs_orchestration.settings import DEFAULTS, SNAPSHOT_RETENTION_DAYS, load_settings
from jobs_orchestration.snapshots.cleanup import SAVINGS_WINDOW_DAYS, CleanupOptions

OPTIONS = CleanupOptions()
"""The plain options' defaults, which the launchpad shows."""


class SnapshotCleanupConfig(dg.Config):
    dry_run: bool = Field(
        default=False, description="Count what would be deleted and report it; change nothing"
    )
    max_deletions: int = Field(
        default=OPTIONS.max_deletions,
        description="Refuse the run, changing nothing, if it would delete more files than this "
        "(guards against a wrong clock or an emptied attachments table)",
    )
    batch_size: int = Field(
        default=OPTIONS.batch_size, description="Rows marked, and files deleted, per batch"
    )
    max_batches: int = Field(
        default=OPTIONS.max_batches,
        description="Batches per run at most; a larger backlog is worked off over nights",
    )
    time_budget_seconds: float = Field(
        default=OPTIONS.time_budget_seconds, description="Start no new batch after this many seconds"
    )
    delete_workers: int = Field(
        default=OPTIONS.delete_workers, description="Batches whose files are deleted in parallel (1 to 8)"
    )
    tombstone_retention_days: int | None = Field(
        default=OPTIONS.tombstone_retention_days,
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
        description=f"Days a parse-session snapshot is kept; default {SNAPSHOT_RETENTION_DAYS} "
        f"or {DEFAULTS.snapshot_retention_days}",
    )

    def to_options(self) -> CleanupOptions:
        """The plain options, the retention from the settings unless given; a bad value raises
        ValueError naming the field (or the variable) and the value."""
        return CleanupOptions(
            retention_days=self.retention_days or load_settings().snapshot_retention_days,
            batch_size=self.batch_size,
            dry_run=self.dry_run,
            max_deletions=self.max_deletions,
            max_batches=self.max_batches,
            time_budget_seconds=self.time_budget_seconds,
            delete_workers=self.delete_workers,
            tombstone_retention_days=self.tombstone_retention_days,
        )
