"""The deletion ops: thin wrappers that run `jobs_orchestration.deletion.service` per request, write the
audit row, and turn the outcome into run metadata, run tags and, for failures, a failed step.

Storage totals are not decremented here: the storage domain's run-status sensor reads the
`organization_id` of each successful deletion run's config (`requests[].organization_id`, or
`organization_id` for a dataset) and requests a refresh of that organization's partition, which
recomputes the totals from what is left.
"""

from typing import Any

import dagster as dg
from dagster_aws.s3 import S3Resource

from jobs_orchestration.defs.deletion.config import (
    DELETE_DATASET_OP,
    DELETE_PACKAGES_OP,
    DeleteDatasetConfig,
    DeletePackagesConfig,
)
from jobs_orchestration.defs.deletion.resources import DeletionSettings
from jobs_orchestration.deletion.audit import JobMessage, record_deletion
from jobs_orchestration.deletion.errors import DeletionRefused, is_transient
from jobs_orchestration.deletion.report import DeletionReport, Outcome
from jobs_orchestration.deletion.service import DeletionStores, delete_dataset, delete_package
from jobs_orchestration.resources import PlatformDatabase

PACKAGE_JOB_NAME = "DeletePackageJob"
DATASET_JOB_NAME = "DeleteDatasetJob"


@dg.op(name=DELETE_PACKAGES_OP, pool="deletion")
def delete_packages(
    context: dg.OpExecutionContext,
    config: DeletePackagesConfig,
    platform_db: PlatformDatabase,
    s3: S3Resource,
    deletion: DeletionSettings,
) -> dg.Output[dict[str, Any]]:
    """Delete each requested package with all its descendants. Each request has its own outcome and
    audit row; a refused or failed request does not stop the others, but fails the step at the end."""
    stores = _stores(platform_db, s3, deletion)
    reports = []
    for request in config.requests:
        message = JobMessage(PACKAGE_JOB_NAME, request.job_id, request.trace_id, request.user_id)
        report = _run_request(
            context,
            lambda request=request: delete_package(
                stores, request.package_id, request.organization_id, dry_run=config.dry_run
            ),
            DeletionReport("package", request.package_id, request.organization_id, Outcome.FAILED),
        )
        record_deletion(platform_db.engine, message, report, context.run_id)
        reports.append(report)
    return _finish(context, reports)


@dg.op(name=DELETE_DATASET_OP, pool="deletion")
def delete_dataset_op(
    context: dg.OpExecutionContext,
    config: DeleteDatasetConfig,
    platform_db: PlatformDatabase,
    s3: S3Resource,
    deletion: DeletionSettings,
) -> dg.Output[dict[str, Any]]:
    """Delete a dataset: its assets, all its packages in pages, then its rows."""
    stores = _stores(platform_db, s3, deletion)
    message = JobMessage(DATASET_JOB_NAME, config.job_id, config.trace_id, config.user_id)
    report = _run_request(
        context,
        lambda: delete_dataset(stores, config.dataset_id, config.organization_id, dry_run=config.dry_run),
        DeletionReport("dataset", config.dataset_id, config.organization_id, Outcome.FAILED),
    )
    record_deletion(platform_db.engine, message, report, context.run_id)
    return _finish(context, [report])


def _stores(platform_db: PlatformDatabase, s3: S3Resource, deletion: DeletionSettings) -> DeletionStores:
    return DeletionStores(
        engine=platform_db.engine,
        s3_client=s3.get_client(),
        timeseries_bucket=deletion.timeseries_bucket,
        workers=deletion.parallel_deletes,
    )


def _run_request(context: dg.OpExecutionContext, run, failed: DeletionReport) -> DeletionReport:
    """Run one request; a refusal or an error becomes its report instead of ending the step."""
    try:
        report = run()
    except DeletionRefused as refusal:
        failed.outcome = Outcome.REFUSED
        failed.message = str(refusal)
        report = failed
    except Exception as error:
        failed.message = f"{failed.kind}_id {failed.resource_id}: {type(error).__name__}: {error}"
        failed.transient = is_transient(error)
        failed.error_count = 1
        report = failed
    log = context.log.info if report.succeeded else context.log.error
    log(f"{report.kind} {report.resource_id}: {report.outcome.value}. {report.message}".strip())
    return report


def _finish(context: dg.OpExecutionContext, reports: list[DeletionReport]) -> dg.Output[dict[str, Any]]:
    totals: dict[str, int] = {}
    for report in reports:
        for name, value in report.figures().items():
            totals[name] = totals.get(name, 0) + value
    outcomes = [
        {"kind": r.kind, "id": r.resource_id, "outcome": r.outcome.value, "message": r.message}
        for r in reports
    ]
    overall = _overall_outcome(reports)
    metadata: dict[str, Any] = {
        **{name: dg.MetadataValue.int(value) for name, value in totals.items()},
        "outcome": overall,
        "requests": dg.MetadataValue.json(outcomes),
    }
    problems = [r for r in reports if not r.succeeded]
    if problems:
        metadata["failures"] = dg.MetadataValue.json(
            [r.detail() | {"outcome": r.outcome.value} for r in problems]
        )
    sample = [key for r in reports if r.would_delete for key in r.would_delete.sample_keys]
    if sample:
        metadata["sample_keys"] = dg.MetadataValue.json(sample)
    context.instance.add_run_tags(
        context.run_id,
        {"deletion/outcome": overall}
        | {
            f"deletion/{name}": str(totals.get(name, 0))
            for name in ("packages_deleted", "objects_deleted", "bytes_deleted")
        },
    )
    if problems:
        raise dg.Failure(
            description="; ".join(r.message for r in problems),
            metadata=metadata,
            # Retry when some request failed on a transient error: the retry deletes just what is left,
            # finished requests report already_deleted and refusals are refused again, unchanged.
            allow_retries=any(r.outcome == Outcome.FAILED and r.transient for r in problems),
        )
    return dg.Output({"outcome": overall, **totals}, metadata=metadata)


def _overall_outcome(reports: list[DeletionReport]) -> str:
    outcomes = {report.outcome for report in reports}
    for outcome in (Outcome.FAILED, Outcome.REFUSED, Outcome.DRY_RUN, Outcome.DELETED):
        if outcome in outcomes:
            return outcome.value
    return Outcome.ALREADY_DELETED.value
