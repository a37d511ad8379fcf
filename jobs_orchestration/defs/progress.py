"""Where a run shows how far its long work has got: the `progress` run tag, which the runs list and
the run's page show while it runs, and, for work that is an asset, an observation of that asset whose
figures the asset's page plots. The log line itself comes from the work's module logger."""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg

from jobs_orchestration.progress import ProgressUpdate

PROGRESS_TAG = "progress"


def progress_publisher(
    context: dg.OpExecutionContext | dg.AssetExecutionContext, asset_key: dg.AssetKey | None = None
) -> Callable[[ProgressUpdate], None]:
    def publish(update: ProgressUpdate) -> None:
        context.instance.add_run_tags(context.run.run_id, {PROGRESS_TAG: progress_text(update)})
        if asset_key is not None:
            context.log_event(dg.AssetObservation(asset_key=asset_key, metadata=progress_metadata(update)))

    return publish


def progress_text(update: ProgressUpdate) -> str:
    """The update without the name of the work, which the run already says."""
    return update.describe().removeprefix(f"{update.work}: ")


def progress_metadata(update: ProgressUpdate) -> dict[str, dg.MetadataValue]:
    metadata: dict[str, dg.MetadataValue] = {
        "progress_done": dg.MetadataValue.int(update.done),
        "progress_total": dg.MetadataValue.int(update.total),
        "progress_per_second": dg.MetadataValue.float(round(update.rate_per_second, 1)),
        "progress": dg.MetadataValue.text(progress_text(update)),
    }
    remaining = update.remaining_seconds
    if remaining is not None:
        metadata["progress_seconds_left"] = dg.MetadataValue.float(round(remaining, 1))
    return metadata
