"""The `snapshot_cleanup` asset: each materialization is one cleanup run and its figures."""

import datetime as dt
from collections.abc import Iterator

import dagster as dg

from jobs_orchestration.defs.progress import progress_publisher
from jobs_orchestration.defs.resources import EmailParserDatabase, SnapshotStoreResource
from jobs_orchestration.defs.retries import retry_only_transient_errors
from jobs_orchestration.defs.snapshots.config import SnapshotCleanupConfig
from jobs_orchestration.snapshots.cleanup import (
    SAVINGS_WINDOW_DAYS,
    CleanupAlreadyRunning,
    CleanupReport,
    TooManyDeletions,
    run_cleanup,
    storage_savings,
)
from jobs_orchestration.units import readable_bytes

ERRORS_TEXT_LIMIT = 4000


@dg.asset(
    group_name="maintenance",
    description="Deletes the Email Parser's expired parse-session snapshots (rows marked, files "
    "deleted, tombstones kept). Metadata plots what each run deleted and the storage freed over "
    f"the last {SAVINGS_WINDOW_DAYS} days.",
)
def snapshot_cleanup(
    context: dg.AssetExecutionContext,
    config: SnapshotCleanupConfig,
    email_parser_db: EmailParserDatabase,
    snapshot_store: SnapshotStoreResource,
) -> Iterator[dg.MaterializeResult]:
    with retry_only_transient_errors():
        try:
            options = config.to_options()
            report = run_cleanup(
                email_parser_db.engine,
                snapshot_store.get_store(),
                options,
                publish_progress=progress_publisher(context, context.asset_key),
                progress_interval=config.progress_interval_seconds,
            )
        except (ValueError, TooManyDeletions, CleanupAlreadyRunning) as error:
            raise dg.Failure(description=str(error), allow_retries=False) from error

    with email_parser_db.engine.connect() as connection:
        freed_files, freed_bytes = storage_savings(connection, dt.datetime.now(dt.UTC))
    context.log.info(
        f"snapshot cleanup{' (dry run)' if report.dry_run else ''}: {report.deleted_count} of "
        f"{report.candidates} candidates deleted, {readable_bytes(report.bytes_freed)} freed, "
        f"{report.error_count} errors, cutoff {report.cutoff.isoformat()}"
    )
    # Recorded before the run fails, so a partial failure still shows what was deleted.
    yield dg.MaterializeResult(metadata=cleanup_metadata(report, freed_files, freed_bytes))
    if report.error_count:
        raise dg.Failure(
            description=f"{report.error_count} snapshot files could not be deleted; their rows stay "
            "marked and the next run retries them. "
            f"{report.deleted_count} files were deleted.",
            metadata={"errors": dg.MetadataValue.text(errors_text(report))},
            allow_retries=False,
        )


def cleanup_metadata(
    report: CleanupReport, freed_files: int, freed_bytes: int
) -> dict[str, dg.MetadataValue]:
    """Stable keys: the numeric ones are plotted over time in the UI."""
    return {
        "deleted_count": dg.MetadataValue.int(report.deleted_count),
        "bytes_freed": dg.MetadataValue.int(report.bytes_freed),
        "error_count": dg.MetadataValue.int(report.error_count),
        "candidates": dg.MetadataValue.int(report.candidates),
        "candidate_bytes": dg.MetadataValue.int(report.candidate_bytes),
        "marked": dg.MetadataValue.int(report.marked),
        "unmarked": dg.MetadataValue.int(report.unmarked),
        "batches": dg.MetadataValue.int(report.batches),
        "tombstones_purged": dg.MetadataValue.int(report.tombstones_purged),
        "duration_seconds": dg.MetadataValue.float(round(report.duration_seconds, 3)),
        "run_started_at": dg.MetadataValue.timestamp(report.started_at),
        "cutoff": dg.MetadataValue.timestamp(report.cutoff),
        "bytes_freed_last_30_days": dg.MetadataValue.int(freed_bytes),
        # The same sizes in readable units, beside the raw integers the UI plots.
        "size_freed": dg.MetadataValue.text(readable_bytes(report.bytes_freed)),
        "candidate_size": dg.MetadataValue.text(readable_bytes(report.candidate_bytes)),
        "size_freed_last_30_days": dg.MetadataValue.text(readable_bytes(freed_bytes)),
        "files_freed_last_30_days": dg.MetadataValue.int(freed_files),
        "dry_run": dg.MetadataValue.bool(report.dry_run),
        "stopped_by": dg.MetadataValue.text(report.stopped_by or "backlog done"),
        "errors": dg.MetadataValue.text(errors_text(report)),
    }


def errors_text(report: CleanupReport) -> str:
    if not report.error_count:
        return ""
    text = "\n".join(report.errors)
    shown = len(report.errors)
    if len(text) > ERRORS_TEXT_LIMIT:
        text = text[:ERRORS_TEXT_LIMIT] + " ..."
    if report.error_count > shown or text.endswith("..."):
        text += f"\n({report.error_count} errors in all; the full list is in the run's log)"
    return text
