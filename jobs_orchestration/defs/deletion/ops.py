"""The deletion ops: thin wrappers that run `jobs_orchestration.deletion.service` per request, write the
audit row, and turn the outcome into run metadata, run tags and, for failures, a failed step.

Storage totals are not decremented here: the run is tagged with the organizations whose data it
changed (`storage/changed_organizations`; none for a dry run or a run whose requests were all refused,
not found or already deleted), and when it succeeds the storage domain's run-status sensor refreshes
each one's partition, which recomputes the totals from what is left.
"""

from typing import Any

import dagster as dg
from dagster_aws.s3 import S3Resource

from jobs_orchestration.defs.deletion.config import (
    DELETE_DATASET_OP,
    DELETE_PACKAGES_OP,
    DeleteDatasetConfig,
    DeletePackagesConfig,
    invalid_launch,
)
from jobs_orchestration.defs.deletion.resources import DeletionSettings
from jobs_orchestration.defs.job_messages import (
    SourceMessage,
    dead_letter_members,
    dead_lettered_by_run_family,
)
from jobs_orchestration.defs.progress import progress_publisher
from jobs_orchestration.defs.resources import PlatformDatabase, SQSResource
from jobs_orchestration.defs.retries import retry_only_transient_errors
from jobs_orchestration.defs.storage.refresh import changed_organizations_tag
from jobs_orchestration.deletion.audit import JobMessage, record_deletion
from jobs_orchestration.deletion.errors import DeletionRefused
from jobs_orchestration.deletion.report import DeletionReport, Outcome
from jobs_orchestration.deletion.service import DeletionStores, delete_dataset
from jobs_orchestration.deletion.service import delete_packages as delete_packages_together
from jobs_orchestration.failures import describe, is_transient
from jobs_orchestration.units import readable_bytes

PACKAGE_JOB_NAME = "DeletePackageJob"
DATASET_JOB_NAME = "DeleteDatasetJob"
OUTCOME_TAG = "deletion/outcome"
READABLE_SIZES = {"bytes_deleted": "size_deleted", "would_delete_bytes": "would_delete_size"}
"""Byte counts in the metadata and the key of the same figure in readable units beside them."""


@dg.op(name=DELETE_PACKAGES_OP, pool="deletion")
def delete_packages(
    context: dg.OpExecutionContext,
    config: DeletePackagesConfig,
    platform_db: PlatformDatabase,
    s3: S3Resource,
    deletion: DeletionSettings,
    sqs: SQSResource,
) -> dg.Output[dict[str, Any]]:
    """Delete each requested package with all its descendants, the requests sharing one stream of
    DeleteObjects calls and one pass over their rows. Each request has its own outcome and audit row; a
    request that fails for a reason of its own is dead-lettered and the others go on."""
    _refuse_invalid_launch(config)
    with retry_only_transient_errors():
        stores = _stores(context, platform_db, s3, deletion)
        done_elsewhere = _dead_lettered_before(context, [request.source for request in config.requests])
        requests = [
            request
            for request in config.requests
            if request.source is None or request.source.message_id not in done_elsewhere
        ]
        results = delete_packages_together(
            stores,
            [(request.package_id, request.organization_id) for request in requests],
            dry_run=config.dry_run,
        )
        outcomes = []
        for request, result in zip(requests, results, strict=True):
            message = JobMessage(PACKAGE_JOB_NAME, request.job_id, request.trace_id, request.user_id)
            report = _run_request(
                context,
                lambda result=result: _report_or_raise(result),
                DeletionReport("package", request.package_id, request.organization_id, Outcome.FAILED),
            )
            outcomes.append((_audited(context, platform_db, message, report), request.source))
        return _finish(context, sqs, outcomes)


@dg.op(name=DELETE_DATASET_OP, pool="deletion")
def delete_dataset_op(
    context: dg.OpExecutionContext,
    config: DeleteDatasetConfig,
    platform_db: PlatformDatabase,
    s3: S3Resource,
    deletion: DeletionSettings,
    sqs: SQSResource,
) -> dg.Output[dict[str, Any]]:
    """Delete a dataset: its assets, all its packages in pages, then its rows."""
    _refuse_invalid_launch(config)
    with retry_only_transient_errors():
        if config.source is not None and _dead_lettered_before(context, [config.source]):
            return dg.Output({"outcome": "dead_lettered"}, metadata={"outcome": "dead_lettered"})
        stores = _stores(context, platform_db, s3, deletion)
        message = JobMessage(DATASET_JOB_NAME, config.job_id, config.trace_id, config.user_id)
        report = _run_request(
            context,
            lambda: delete_dataset(stores, config.dataset_id, config.organization_id, dry_run=config.dry_run),
            DeletionReport("dataset", config.dataset_id, config.organization_id, Outcome.FAILED),
        )
        return _finish(context, sqs, [(_audited(context, platform_db, message, report), config.source)])


def _refuse_invalid_launch(config: DeletePackagesConfig | DeleteDatasetConfig) -> None:
    problem = invalid_launch(config)
    if problem:
        raise dg.Failure(description=problem, allow_retries=False)


def _dead_lettered_before(context: dg.OpExecutionContext, sources: list[SourceMessage | None]) -> set[str]:
    """Messages of this run an earlier attempt already dead-lettered: they are not tried again."""
    if not any(source is not None for source in sources):
        return set()
    return dead_lettered_by_run_family(context.instance, context.run)


def _audited(
    context: dg.OpExecutionContext, platform_db: PlatformDatabase, message: JobMessage, report: DeletionReport
) -> DeletionReport:
    """Write the request's audit row. A row the database refuses for good is the request's own failure
    (reported, and dead-lettered with the rest of its kind); an outage fails the step, to be retried."""
    try:
        record_deletion(platform_db.engine, message, report, context.run_id)
    except Exception as error:
        if is_transient(error):
            raise
        report.message = f"{report.message} The audit row could not be written: {describe(error)}".strip()
        report.outcome = Outcome.FAILED
        report.transient = False
        context.log.error(f"{report.kind} {report.resource_id}: {report.message}")
    return report


def _stores(
    context: dg.OpExecutionContext, platform_db: PlatformDatabase, s3: S3Resource, deletion: DeletionSettings
) -> DeletionStores:
    return DeletionStores(
        engine=platform_db.engine,
        s3_client=s3.get_client(),
        timeseries_bucket=deletion.timeseries_bucket,
        workers=deletion.parallel_deletes,
        publish_progress=progress_publisher(context),
        progress_interval=deletion.progress_interval_seconds,
    )


def _report_or_raise(result: DeletionReport | Exception) -> DeletionReport:
    if isinstance(result, Exception):
        raise result
    return result


def _run_request(context: dg.OpExecutionContext, run, failed: DeletionReport) -> DeletionReport:
    """Run one request; a refusal or an error becomes its report instead of ending the step."""
    try:
        report = run()
    except DeletionRefused as refusal:
        failed.outcome = Outcome.REFUSED
        failed.message = str(refusal)
        report = failed
    except Exception as error:
        failed.message = f"{failed.kind}_id {failed.resource_id}: {describe(error)}"
        failed.transient = is_transient(error)
        failed.error_count = 1
        report = failed
    if not report.succeeded:
        log = context.log.error
    elif report.outcome == Outcome.NOT_FOUND:
        log = context.log.warning
    else:
        log = context.log.info
    log(f"{report.kind} {report.resource_id}: {report.outcome.value}. {report.message}".strip())
    return report


def _finish(
    context: dg.OpExecutionContext,
    sqs: SQSResource,
    outcomes: list[tuple[DeletionReport, SourceMessage | None]],
) -> dg.Output[dict[str, Any]]:
    reports = [report for report, _source in outcomes]
    # A request refused or failed for good came with a message: that message goes to the dead-letter
    # queue with the reason, and the run goes on. Without a message (a launch from the UI) it fails
    # the step, as does any failure a retry may get past.
    poison = [
        (report, source)
        for report, source in outcomes
        if source is not None and not report.succeeded and not report.transient
    ]
    dead_letter_members(
        context,
        sqs,
        [(source, f"{r.kind}_id {r.resource_id}: {r.outcome.value}: {r.message}") for r, source in poison],
    )
    dead_lettered = {id(report) for report, _source in poison}
    totals: dict[str, int] = {}
    for report in reports:
        for name, value in report.figures().items():
            totals[name] = totals.get(name, 0) + value
    outcomes_metadata = [
        {"kind": r.kind, "id": r.resource_id, "outcome": r.outcome.value, "message": r.message}
        for r in reports
    ]
    overall = _overall_outcome(reports)
    metadata: dict[str, Any] = {
        **{name: dg.MetadataValue.int(value) for name, value in totals.items()},
        **{
            size_name: dg.MetadataValue.text(readable_bytes(totals[name]))
            for name, size_name in READABLE_SIZES.items()
            if name in totals
        },
        "outcome": overall,
        "requests": dg.MetadataValue.json(outcomes_metadata),
        "not_found": dg.MetadataValue.int(sum(r.outcome == Outcome.NOT_FOUND for r in reports)),
        "dead_lettered": dg.MetadataValue.int(len(poison)),
    }
    problems = [r for r in reports if not r.succeeded]
    # Not found is done for a job message (see `SUCCESSFUL_OUTCOMES`). Launched from the UI it fails the
    # run, so a mistyped id is not mistaken for a deletion; but not on a retry, where an earlier attempt
    # may be what removed the rows.
    unfound_launches = [
        r
        for r, source in outcomes
        if r.outcome == Outcome.NOT_FOUND and source is None and _first_attempt(context)
    ]
    if problems:
        metadata["failures"] = dg.MetadataValue.json(
            [r.detail() | {"outcome": r.outcome.value} for r in problems]
        )
    sample = [key for r in reports if r.would_delete for key in r.would_delete.sample_keys]
    if sample:
        metadata["sample_keys"] = dg.MetadataValue.json(sample)
    # The one tag operators filter deletions by (the figures are in the metadata), and the organizations
    # whose storage totals the run's success should refresh.
    changed = {r.organization_id for r in reports if r.changed_storage}
    context.instance.add_run_tags(
        context.run_id, {OUTCOME_TAG: overall, **changed_organizations_tag(changed)}
    )
    unsettled = [r for r in problems if id(r) not in dead_lettered] + unfound_launches
    if unsettled:
        raise dg.Failure(
            description="; ".join(r.message for r in unsettled),
            metadata=metadata,
            # Retry when some request failed on a transient error: the retry deletes just what is left,
            # finished requests report already_deleted and refusals are refused again, unchanged.
            allow_retries=any(r.outcome == Outcome.FAILED and r.transient for r in unsettled),
        )
    return dg.Output({"outcome": overall, **totals}, metadata=metadata)


def _first_attempt(context: dg.OpExecutionContext) -> bool:
    return context.retry_number == 0 and context.run.parent_run_id is None


def _overall_outcome(reports: list[DeletionReport]) -> str:
    """The least good outcome among the requests: what needs a look first."""
    outcomes = {report.outcome for report in reports}
    for outcome in (Outcome.FAILED, Outcome.REFUSED, Outcome.NOT_FOUND, Outcome.DRY_RUN, Outcome.DELETED):
        if outcome in outcomes:
            return outcome.value
    return Outcome.ALREADY_DELETED.value
