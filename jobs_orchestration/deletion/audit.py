"""The `job_audit_log` row of a deletion request: one per request and run, whatever the outcome.

An op retried within one run updates its row instead of adding another: the figures add up over the
attempts (each attempt removes only what the one before left), and a request done by an earlier attempt
keeps its outcome when the retry finds it already deleted (or, for a dataset whose rows the first attempt
removed, not found).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from jobs_orchestration.db.platform import JobAuditLog
from jobs_orchestration.deletion.report import DeletionReport, Outcome

_ADDITIVE = ("packages_deleted", "files_deleted", "objects_deleted", "bytes_deleted")


@dataclass(frozen=True)
class JobMessage:
    """Who asked for a deletion, as the job message (or the UI launch) says."""

    job_name: str
    job_id: str = ""
    trace_id: str = ""
    user_id: str = ""


def record_deletion(engine: Engine, message: JobMessage, report: DeletionReport, run_id: str | None) -> int:
    """Write (or, on an op retry in the same run, update) the audit row; returns its id."""
    values = {
        "packages_deleted": report.packages_deleted,
        "files_deleted": report.files_deleted,
        "objects_deleted": report.objects_deleted,
        "bytes_deleted": report.bytes_deleted,
    }
    with engine.begin() as connection:
        existing = None
        if run_id:
            candidates = connection.execute(
                sa.select(JobAuditLog.__table__)
                .where(
                    JobAuditLog.dagster_run_id == run_id,
                    JobAuditLog.job_name == message.job_name,
                    JobAuditLog.organization_id == report.organization_id,
                )
                .with_for_update()
            ).all()
            existing = next(
                (row for row in candidates if row.resource_ids == [report.resource_id]),
                None,
            )
        if existing is None:
            return connection.execute(
                sa.insert(JobAuditLog)
                .values(
                    job_name=message.job_name,
                    job_id=message.job_id or None,
                    trace_id=message.trace_id or None,
                    user_id=message.user_id or None,
                    organization_id=report.organization_id,
                    resource_ids=[report.resource_id],
                    outcome=report.outcome.value,
                    detail={**report.detail(), "attempts": 1},
                    dagster_run_id=run_id,
                    **values,
                )
                .returning(JobAuditLog.id)
            ).scalar_one()
        keep_outcome = existing.outcome == Outcome.DELETED and report.outcome in (
            Outcome.ALREADY_DELETED,
            Outcome.NOT_FOUND,
        )
        detail = report.detail()
        if keep_outcome:
            detail = {**existing.detail, "retry_found": report.outcome.value}
        connection.execute(
            sa.update(JobAuditLog)
            .where(JobAuditLog.id == existing.id)
            .values(
                outcome=existing.outcome if keep_outcome else report.outcome.value,
                detail={**detail, "attempts": existing.detail.get("attempts", 1) + 1},
                **{name: getattr(existing, name) + values[name] for name in _ADDITIVE},
            )
        )
        return existing.id
