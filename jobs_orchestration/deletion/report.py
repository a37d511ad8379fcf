"""What one deletion request did: the figures for the audit row, the run's metadata and its tags."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from jobs_orchestration.deletion.rows import Remaining


class Outcome(enum.StrEnum):
    DELETED = "deleted"
    ALREADY_DELETED = "already_deleted"
    """The package is a DELETED tombstone: an earlier run deleted it."""
    NOT_FOUND = "not_found"
    """No such row: deleted with its dataset (a dataset's rows go, its packages' with them), or an id
    that never existed. The two cannot be told apart once the rows are gone."""
    REFUSED = "refused"
    FAILED = "failed"
    DRY_RUN = "dry_run"


SUCCESSFUL_OUTCOMES = frozenset(
    {Outcome.DELETED, Outcome.ALREADY_DELETED, Outcome.NOT_FOUND, Outcome.DRY_RUN}
)
"""Outcomes that leave nothing to do. A job message whose package or dataset is not found is done (the
queue path stays idempotent: a redelivery after the dataset's rows went must not be dead-lettered);
the deletion jobs fail a launch from the UI that names one, since there a mistyped id is likelier."""


@dataclass
class DryRunSummary:
    packages: int = 0
    files: int = 0
    ranges: int = 0
    assets: int = 0
    objects: int = 0
    bytes: int = 0
    sample_keys: list[str] = field(default_factory=list)


@dataclass
class DeletionReport:
    kind: str
    """'package' or 'dataset'."""
    resource_id: int
    organization_id: int
    outcome: Outcome
    message: str = ""
    packages_deleted: int = 0
    files_deleted: int = 0
    objects_deleted: int = 0
    bytes_deleted: int = 0
    ranges_deleted: int = 0
    assets_deleted: int = 0
    error_count: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    transient: bool = False
    """For a failure: every error met may pass on a later attempt (throttling, timeouts, lost links)."""
    remaining: Remaining | None = None
    would_delete: DryRunSummary | None = None

    @property
    def succeeded(self) -> bool:
        return self.outcome in SUCCESSFUL_OUTCOMES

    @property
    def changed_storage(self) -> bool:
        """Whether the organization's stored data changed: something was deleted or closed, also by a
        request that then failed part way."""
        removed = (self.packages_deleted, self.files_deleted, self.objects_deleted, self.ranges_deleted)
        return self.outcome == Outcome.DELETED or any(removed) or bool(self.assets_deleted)

    def figures(self) -> dict[str, int]:
        figures = {
            "packages_deleted": self.packages_deleted,
            "files_deleted": self.files_deleted,
            "objects_deleted": self.objects_deleted,
            "bytes_deleted": self.bytes_deleted,
            "timeseries_ranges_deleted": self.ranges_deleted,
            "dataset_assets_deleted": self.assets_deleted,
            "error_count": self.error_count,
        }
        if self.remaining is not None:
            figures.update(
                remaining_files=self.remaining.files,
                remaining_timeseries_ranges=self.remaining.ranges,
                remaining_dataset_assets=self.remaining.assets,
            )
        if self.would_delete is not None:
            summary = self.would_delete
            figures.update(
                would_delete_packages=summary.packages,
                would_delete_files=summary.files,
                would_delete_timeseries_ranges=summary.ranges,
                would_delete_dataset_assets=summary.assets,
                would_delete_objects=summary.objects,
                would_delete_bytes=summary.bytes,
            )
        return figures

    def detail(self) -> dict[str, Any]:
        """The JSON kept in the audit row: figures, errors and what remains (or the dry run's sample)."""
        detail: dict[str, Any] = {
            "kind": self.kind,
            "resource_id": self.resource_id,
            "figures": self.figures(),
        }
        if self.message:
            detail["message"] = self.message
        if self.errors:
            detail["errors"] = self.errors
            detail["transient"] = self.transient
        if self.remaining is not None and self.remaining.total:
            detail["remaining"] = self.remaining.sample
        if self.would_delete is not None:
            detail["sample_keys"] = self.would_delete.sample_keys
        return detail
