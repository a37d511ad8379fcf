"""Deleting a package (with its whole tree) or a dataset (with all its packages).

Order, for crash safety: guards before anything is touched; then objects, each batch's rows removed
right after its objects are gone; then packages with nothing left are closed (DELETED); the root of a
package deletion is closed last, and a dataset's rows go last. Whatever a crash interrupts, the rows
still present say what is left and a re-run carries on from there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import Connection
from sqlalchemy.engine import Engine

from jobs_orchestration.connectivity import ServiceUnreachable
from jobs_orchestration.deletion import guards, rows
from jobs_orchestration.deletion.guards import GuardVerdict
from jobs_orchestration.deletion.pipeline import DeletionPipeline, DryRunTally, ObjectSink, PipelineTotals
from jobs_orchestration.deletion.report import DeletionReport, DryRunSummary, Outcome
from jobs_orchestration.deletion.rows import ASSETS, FILES, RANGES, Forgotten, Owner
from jobs_orchestration.deletion.scope import DatasetPackages, PackageScope, PackageTree, iter_package_pages
from jobs_orchestration.progress import REPORT_INTERVAL_SECONDS, ProgressMeter, ProgressUpdate

log = logging.getLogger(__name__)


@dataclass
class DeletionStores:
    """What a deletion works on: the platform database and S3."""

    engine: Engine
    s3_client: Any
    timeseries_bucket: str
    workers: int = 8
    forget: Callable[[Connection, Sequence[Owner]], Forgotten] | None = None
    """Removes rows once their objects are gone; `rows.forget` unless given (a fault injected in tests)."""
    publish_progress: Callable[[ProgressUpdate], None] | None = None
    progress_interval: float = REPORT_INTERVAL_SECONDS


def delete_package(
    stores: DeletionStores, package_id: int, organization_id: int, *, dry_run: bool = False
) -> DeletionReport:
    """Delete a DELETING package and every descendant: objects, time-series data, rows. Raises
    DeletionRefused (nothing touched) for another organization's package or one not DELETING."""
    with stores.engine.connect() as connection:
        verdict = guards.check_package(connection, package_id, organization_id)
    report = DeletionReport("package", package_id, organization_id, Outcome.ALREADY_DELETED)
    if verdict is not GuardVerdict.PROCEED:
        return _nothing_to_do(report, verdict)
    scope = PackageTree(package_id, organization_id)
    if dry_run:
        return _dry_run(stores, scope, report)
    with _pipeline(stores, report, scope) as pipeline:
        report.packages_deleted = _feed(stores, scope, pipeline, hold=package_id)
    report.packages_deleted += _close_pages(stores.engine, scope, hold=package_id)
    report.remaining = rows.remaining_in_scope(stores.engine, scope)
    if report.remaining.total or report.error_count:
        return _failed(report)
    with stores.engine.begin() as connection:
        report.packages_deleted += rows.close_package(connection, package_id)
    report.outcome = Outcome.DELETED
    return report


def delete_dataset(
    stores: DeletionStores, dataset_id: int, organization_id: int, *, dry_run: bool = False
) -> DeletionReport:
    """Delete a DELETING dataset: its assets, then all its packages in pages, then its rows. Raises
    DeletionRefused (nothing touched) for another organization's dataset or one not DELETING."""
    with stores.engine.connect() as connection:
        verdict = guards.check_dataset(connection, dataset_id, organization_id)
    report = DeletionReport("dataset", dataset_id, organization_id, Outcome.ALREADY_DELETED)
    if verdict is not GuardVerdict.PROCEED:
        return _nothing_to_do(report, verdict)
    scope = DatasetPackages(dataset_id, organization_id)
    if dry_run:
        _dry_run(stores, scope, report, dataset_id=dataset_id)
        with stores.engine.connect() as connection:
            foreign = rows.foreign_packages(connection, dataset_id, organization_id)
        if foreign.count:
            report.message += f"; {foreign.describe()} would be left untouched and keep the dataset row"
        return report
    with _pipeline(stores, report, scope, dataset_id=dataset_id) as pipeline:
        _feed_assets(stores, dataset_id, pipeline)
        report.packages_deleted = _feed(stores, scope, pipeline)
    report.packages_deleted += _close_pages(stores.engine, scope)
    report.remaining = rows.remaining_in_scope(stores.engine, scope, dataset_id=dataset_id)
    if report.remaining.total or report.error_count:
        return _failed(report)
    foreign = rows.remove_dataset(stores.engine, dataset_id, organization_id)
    if foreign.count:
        return _kept_by_foreign_packages(report, foreign)
    report.outcome = Outcome.DELETED
    return report


def _nothing_to_do(report: DeletionReport, verdict: GuardVerdict) -> DeletionReport:
    if verdict is GuardVerdict.NOT_FOUND:
        report.outcome = Outcome.NOT_FOUND
        # A deleted dataset leaves no row, and its packages' rows go with it: "not found" may mean done.
        why = "deleted with its dataset" if report.kind == "package" else "deleted before, leaving no row"
        report.message = (
            f"{report.kind}_id {report.resource_id} not found: no such {report.kind} ({why}, or never "
            "existed); nothing deleted"
        )
    else:
        report.outcome = Outcome.ALREADY_DELETED
        report.message = f"{report.kind}_id {report.resource_id} is already deleted"
    return report


def _feed(stores: DeletionStores, scope: PackageScope, sink: ObjectSink, *, hold: int | None = None) -> int:
    """Walk the scope a page of packages at a time and hand every object to the sink. With a pipeline,
    the previous page's packages are closed as the walk goes on, so the state shows progress; returns
    how many were closed."""
    closed = 0
    previous: Sequence[int] = []
    for package_ids in iter_package_pages(stores.engine, scope):
        for row in rows.iter_file_rows(stores.engine, package_ids):
            owner = Owner(FILES, row.id)
            if row.is_prefix:
                sink.add_prefix(row.s3_bucket, _as_prefix(row.s3_key), owner, row.size)
            else:
                sink.add(row.s3_bucket, row.s3_key, owner, row.size)
        for range_id, location in rows.iter_range_rows(stores.engine, package_ids):
            bucket, key = _range_object(location, stores.timeseries_bucket)
            sink.add(bucket, key, Owner(RANGES, range_id))
        if previous and isinstance(sink, DeletionPipeline):
            with stores.engine.begin() as connection:
                closed += rows.finalize_packages(connection, previous, hold=hold)
        previous = package_ids
    return closed


def _feed_assets(stores: DeletionStores, dataset_id: int, sink: ObjectSink) -> None:
    for asset_id, bucket, key in rows.asset_rows(stores.engine, dataset_id):
        sink.add(bucket, key, Owner(ASSETS, asset_id))


def _close_pages(engine: Engine, scope: PackageScope, *, hold: int | None = None) -> int:
    """Close every package of the scope that has nothing left, a page per transaction."""
    closed = 0
    for package_ids in iter_package_pages(engine, scope):
        with engine.begin() as connection:
            closed += rows.finalize_packages(connection, package_ids, hold=hold)
    return closed


@contextmanager
def _pipeline(
    stores: DeletionStores, report: DeletionReport, scope: PackageScope, *, dataset_id: int | None = None
) -> Iterator[DeletionPipeline]:
    """A pipeline fed by the block, drained at its end, its totals copied into the report. An outage
    of S3 or the database ends the block early and counts as one more (transient) error: the rows
    still present then say what remains. Progress counts the rows removed against those in the scope,
    counted only once a deletion outlasts the first report interval."""

    def total(done: int) -> int:
        return done + rows.remaining_in_scope(stores.engine, scope, dataset_id=dataset_id, sample_size=0).total

    progress = ProgressMeter(
        f"{report.kind} {report.resource_id} deletion",
        "files, ranges and assets",
        total,
        log=log,
        publish=stores.publish_progress,
        interval=stores.progress_interval,
    )
    pipeline = DeletionPipeline(
        stores.s3_client, stores.engine, workers=stores.workers, forget=stores.forget, progress=progress
    )
    outage: ServiceUnreachable | None = None
    try:
        with pipeline:
            yield pipeline
            pipeline.drain()
    except ServiceUnreachable as error:
        outage = error
    progress.finish()
    _take_totals(report, pipeline.totals)
    if outage is not None:
        report.error_count += 1
        report.errors["unreachable"] = str(outage)


def _take_totals(report: DeletionReport, totals: PipelineTotals) -> None:
    report.objects_deleted = totals.objects_deleted
    report.files_deleted = totals.forgotten.files
    report.bytes_deleted = totals.forgotten.bytes
    report.ranges_deleted = totals.forgotten.ranges
    report.assets_deleted = totals.forgotten.assets
    report.error_count = totals.error_count
    report.errors = totals.errors
    report.transient = totals.permanent_errors == 0


def _failed(report: DeletionReport) -> DeletionReport:
    remaining = report.remaining
    report.outcome = Outcome.FAILED
    report.message = (
        f"{report.kind}_id {report.resource_id}: {report.error_count} error(s); remaining "
        f"{remaining.files if remaining else '?'} file row(s), {remaining.ranges if remaining else '?'} "
        f"time-series range(s), {remaining.assets if remaining else '?'} dataset asset(s); "
        "a retry deletes just those"
    )
    if "unreachable" in report.errors:
        report.message += f" (stopped early: {report.errors['unreachable']})"
    return report


def _kept_by_foreign_packages(report: DeletionReport, foreign: rows.ForeignPackages) -> DeletionReport:
    """The requester's part of the dataset is gone; what is left belongs to other organizations and
    needs a person (a retry would meet the same rows), so the failure is permanent."""
    report.outcome = Outcome.FAILED
    report.transient = False
    report.error_count += 1
    report.errors["foreign_packages"] = foreign.describe()
    report.message = (
        f"dataset_id {report.resource_id}: the packages of organization_id {report.organization_id} are "
        f"deleted, but {foreign.describe()} name the dataset and were left untouched; the dataset row "
        "stays DELETING until they are moved out of it or deleted by their organization"
    )
    return report


def _dry_run(
    stores: DeletionStores, scope: PackageScope, report: DeletionReport, *, dataset_id: int | None = None
) -> DeletionReport:
    tally = DryRunTally(stores.s3_client)
    if dataset_id is not None:
        _feed_assets(stores, dataset_id, tally)
    _feed(stores, scope, tally)
    packages = sum(len(page) for page in iter_package_pages(stores.engine, scope))
    report.outcome = Outcome.DRY_RUN
    report.would_delete = DryRunSummary(
        packages=packages,
        files=tally.files,
        ranges=tally.ranges,
        assets=tally.assets,
        objects=tally.objects,
        bytes=tally.bytes,
        sample_keys=tally.sample_keys,
    )
    report.message = f"dry run: nothing deleted from {report.kind}_id {report.resource_id}"
    return report


def _as_prefix(key: str) -> str:
    """A multi-object file's key names a folder: list under 'key/' so a sibling 'key2/...' is spared."""
    return key if key.endswith("/") else f"{key}/"


def _range_object(location: str, timeseries_bucket: str) -> tuple[str, str]:
    """A range's `location` is a key in the time-series bucket; an s3://bucket/key URL is taken as is."""
    if location.startswith("s3://"):
        parsed = urlparse(location)
        return parsed.netloc, parsed.path.lstrip("/")
    return timeseries_bucket, location
