"""Deleting a package (with its whole tree) or a dataset (with all its packages).

Order, for crash safety: guards before anything is touched; then objects, each batch's rows removed
right after its objects are gone; then packages with nothing left are closed (DELETED); the root of a
package deletion is closed last, and a dataset's rows go last. Whatever a crash interrupts, the rows
still present say what is left and a re-run carries on from there.

The package deletions of one run share that work (`delete_packages`): one guard query, one walk of all
their trees a page at a time, one pipeline whose DeleteObjects batches mix the requests' keys (100
one-file packages make one call, not 100), one pass that closes what is empty. The order above holds
for each request, and each keeps its own report: its figures, the errors met on its own objects and
rows, its outcome. A package inside another request's tree, or requested twice, is deleted on its own
after the shared work, as a run deleting them one after the other would.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections import Counter
from collections.abc import Callable, Collection, Hashable, Iterable, Iterator, Mapping, Sequence
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
from jobs_orchestration.deletion.report import DeletionReport, Outcome
from jobs_orchestration.deletion.rows import ASSETS, FILES, RANGES, Forgotten, Owner, Remaining
from jobs_orchestration.deletion.scope import (
    DatasetPackages,
    PackageScope,
    PackageTree,
    iter_forest_pages,
    iter_package_pages,
    nested_roots,
)
from jobs_orchestration.progress import REPORT_INTERVAL_SECONDS, ProgressMeter, ProgressUpdate

log = logging.getLogger(__name__)

PackagePages = Iterable[Mapping[int, Hashable]]
"""Pages of package ids, each id mapped to the request it is deleted for (None when there is one)."""


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

    def progress(self, work: str, rows_left: Callable[[], int]) -> ProgressMeter:
        """A meter of the rows a deletion removes (files, ranges, assets) against those it started with,
        counted (`rows_left`) only once the deletion outlasts the first report interval."""
        return ProgressMeter(
            work,
            "files, ranges and assets",
            lambda done: done + rows_left(),
            log=log,
            publish=self.publish_progress,
            interval=self.progress_interval,
        )


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
    closed: Counter[Hashable] = Counter()
    with _pipeline(stores, report, scope) as pipeline:
        _feed(stores, _pages(stores.engine, scope), pipeline, hold=[package_id], closed=closed)
    _close_pages(stores.engine, _pages(stores.engine, scope), hold=[package_id], closed=closed)
    report.packages_deleted = closed.total()
    report.remaining = rows.remaining_in_scope(stores.engine, scope)
    if report.remaining.total or report.error_count:
        return _failed(report)
    with stores.engine.begin() as connection:
        report.packages_deleted += rows.close_package(connection, package_id)
    report.outcome = Outcome.DELETED
    return report


def delete_packages(
    stores: DeletionStores, requests: Sequence[tuple[int, int]], *, dry_run: bool = False
) -> list[DeletionReport | Exception]:
    """Delete the packages of several requests ((package id, organization id) each, a run's batch)
    through one shared pipeline and one walk of their rows; one result per request, in order. A
    result is the request's report, or the error that ended it: a refusal (DeletionRefused, nothing
    of it touched) is that request's alone; an error the shared work could not put down to one
    request (an outage, say) is given to every request that shared it."""
    if dry_run:
        return [
            _attempt(functools.partial(delete_package, stores, *request, dry_run=dry_run))
            for request in requests
        ]
    results: list[DeletionReport | Exception | None] = [None] * len(requests)
    try:
        with stores.engine.connect() as connection:
            verdicts = guards.check_packages(connection, requests)
    except Exception as error:
        return [error] * len(requests)
    shared: dict[int, int] = {}  # package id -> the request that deletes it with the others
    for index, ((package_id, organization_id), verdict) in enumerate(zip(requests, verdicts, strict=True)):
        if isinstance(verdict, Exception):
            results[index] = verdict
        elif verdict is not GuardVerdict.PROCEED:
            report = DeletionReport("package", package_id, organization_id, Outcome.ALREADY_DELETED)
            results[index] = _nothing_to_do(report, verdict)
        elif package_id not in shared:
            shared[package_id] = index
    if shared:
        try:
            with stores.engine.connect() as connection:
                for nested in nested_roots(connection, _roots(requests, shared)):
                    del shared[nested]
            reports = _delete_trees(stores, _roots(requests, shared))
            for package_id, index in shared.items():
                results[index] = reports[package_id]
        except Exception as error:
            for index in shared.values():
                results[index] = error
    # Left: a package requested again, or inside another request's tree. Deleted one at a time now,
    # they find what the shared work left of them (often nothing: already deleted).
    return [
        result if result is not None else _attempt(functools.partial(delete_package, stores, *request))
        for request, result in zip(requests, results, strict=True)
    ]


def _roots(requests: Sequence[tuple[int, int]], shared: dict[int, int]) -> list[tuple[int, int]]:
    return [requests[index] for index in shared.values()]


def _attempt(delete: Callable[[], DeletionReport]) -> DeletionReport | Exception:
    try:
        return delete()
    except Exception as error:
        return error


def _delete_trees(stores: DeletionStores, roots: Sequence[tuple[int, int]]) -> dict[int, DeletionReport]:
    """Delete the trees of DELETING packages, none inside another's tree, sharing one pipeline; each
    root keeps its own report, held DELETING until nothing is left of its own tree."""
    reports = {
        package_id: DeletionReport("package", package_id, organization_id, Outcome.ALREADY_DELETED)
        for package_id, organization_id in roots
    }
    hold = list(reports)
    closed: Counter[Hashable] = Counter()
    with _draining_pipeline(
        stores,
        f"deletion of {len(roots)} package{'s' if len(roots) > 1 else ''}",
        lambda: sum(
            rows.remaining_in_scope(stores.engine, PackageTree(*root), sample_size=0).total for root in roots
        ),
    ) as drained:
        _feed(stores, iter_forest_pages(stores.engine, roots), drained.pipeline, hold=hold, closed=closed)
    pipeline, outage = drained.pipeline, drained.outage
    left: Counter[Hashable] = Counter()
    _close_pages(stores.engine, iter_forest_pages(stores.engine, roots), hold=hold, closed=closed, left=left)
    for package_id, report in reports.items():
        _take_totals(report, pipeline.totals_for(package_id))
        report.packages_deleted = closed[package_id]
        report.remaining = Remaining()
        if left[package_id]:
            tree = PackageTree(package_id, report.organization_id)
            report.remaining = rows.remaining_in_scope(stores.engine, tree)
            if outage is not None:
                # Stopped before its turn came, or in the middle of it: the rows say what is left.
                report.error_count += 1
                report.errors["unreachable"] = str(outage)
        if report.remaining.total or report.error_count:
            _failed(report)
    emptied = [package_id for package_id, report in reports.items() if report.outcome is not Outcome.FAILED]
    if emptied:
        with stores.engine.begin() as connection:
            closed_roots = set(rows.close_packages(connection, emptied))
        for package_id in emptied:
            reports[package_id].packages_deleted += package_id in closed_roots
            reports[package_id].outcome = Outcome.DELETED
    return reports


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
    closed: Counter[Hashable] = Counter()
    with _pipeline(stores, report, scope, dataset_id=dataset_id) as pipeline:
        _feed_assets(stores, dataset_id, pipeline)
        _feed(stores, _pages(stores.engine, scope), pipeline, closed=closed)
    _close_pages(stores.engine, _pages(stores.engine, scope), closed=closed)
    report.packages_deleted = closed.total()
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


def _pages(engine: Engine, scope: PackageScope) -> Iterator[dict[int, Hashable]]:
    """The scope's pages for one request."""
    for package_ids in iter_package_pages(engine, scope):
        yield dict.fromkeys(package_ids)


def _feed(
    stores: DeletionStores,
    pages: PackagePages,
    sink: ObjectSink,
    *,
    hold: Collection[int] = (),
    closed: Counter[Hashable] | None = None,
) -> None:
    """Walk the packages a page at a time and hand every object to the sink, for the request its
    package belongs to. With a pipeline, the previous page's packages are closed as the walk goes on,
    so the state shows progress; `closed` counts them per request."""
    previous: Mapping[int, Hashable] = {}
    for page in pages:
        package_ids = list(page)
        for row in rows.iter_file_rows(stores.engine, package_ids):
            owner = Owner(FILES, row.id)
            request = page[row.package_id]
            if row.is_prefix:
                sink.add_prefix(row.s3_bucket, _as_prefix(row.s3_key), owner, row.size, request=request)
            else:
                sink.add(row.s3_bucket, row.s3_key, owner, row.size, request=request)
        for range_row in rows.iter_range_rows(stores.engine, package_ids):
            bucket, key = _range_object(range_row.location, stores.timeseries_bucket)
            sink.add(bucket, key, Owner(RANGES, range_row.id), request=page[range_row.package_id])
        if previous and isinstance(sink, DeletionPipeline):
            _close_page(stores.engine, previous, hold, closed)
        previous = page


def _feed_assets(stores: DeletionStores, dataset_id: int, sink: ObjectSink) -> None:
    for asset_id, bucket, key in rows.asset_rows(stores.engine, dataset_id):
        sink.add(bucket, key, Owner(ASSETS, asset_id))


def _close_pages(
    engine: Engine,
    pages: PackagePages,
    *,
    hold: Collection[int] = (),
    closed: Counter[Hashable] | None = None,
    left: Counter[Hashable] | None = None,
) -> None:
    """Close every package of the pages that has nothing left, a page per transaction, counting them
    per request in `closed`; `left` counts per request the rows still locating stored objects."""
    for page in pages:
        _close_page(engine, page, hold, closed)
        if left is not None:
            with engine.connect() as connection:
                for package_id, (files, ranges) in rows.remaining_per_package(connection, list(page)).items():
                    left[page[package_id]] += files + ranges


def _close_page(
    engine: Engine, page: Mapping[int, Hashable], hold: Collection[int], closed: Counter[Hashable] | None
) -> None:
    with engine.begin() as connection:
        emptied = rows.finalize_packages_returning(connection, list(page), hold=hold)
    if closed is not None:
        closed.update(page[package_id] for package_id in emptied)


@contextmanager
def _pipeline(
    stores: DeletionStores, report: DeletionReport, scope: PackageScope, *, dataset_id: int | None = None
) -> Iterator[DeletionPipeline]:
    """A pipeline fed by the block, drained at its end, its totals copied into the report. An outage
    of S3 or the database ends the block early and counts as one more (transient) error: the rows
    still present then say what remains."""
    with _draining_pipeline(
        stores,
        f"{report.kind} {report.resource_id} deletion",
        lambda: rows.remaining_in_scope(stores.engine, scope, dataset_id=dataset_id, sample_size=0).total,
    ) as drained:
        yield drained.pipeline
    _take_totals(report, drained.pipeline.totals)
    if drained.outage is not None:
        report.error_count += 1
        report.errors["unreachable"] = str(drained.outage)


@dataclass
class _Drained:
    pipeline: DeletionPipeline
    outage: ServiceUnreachable | None = None
    """The outage that ended the block early, if one did."""


@contextmanager
def _draining_pipeline(stores: DeletionStores, work: str, rows_left: Callable[[], int]) -> Iterator[_Drained]:
    """A pipeline with its progress meter, fed by the block and drained at its end. An outage of S3 or
    the database ends the block early and is kept, not raised: the rows still present say what
    remains."""
    progress = stores.progress(work, rows_left)
    drained = _Drained(
        DeletionPipeline(
            stores.s3_client, stores.engine, workers=stores.workers, forget=stores.forget, progress=progress
        )
    )
    try:
        with drained.pipeline:
            yield drained
            drained.pipeline.drain()
    except ServiceUnreachable as error:
        drained.outage = error
    progress.finish()


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
    _feed(stores, _pages(stores.engine, scope), tally)
    packages = sum(len(page) for page in iter_package_pages(stores.engine, scope))
    report.outcome = Outcome.DRY_RUN
    report.would_delete = dataclasses.replace(tally.summary, packages=packages)
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
