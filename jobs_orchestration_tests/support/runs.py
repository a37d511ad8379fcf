"""Reading what a run recorded: its audit rows and its step's metadata."""

from __future__ import annotations

from typing import Any

import dagster as dg
import sqlalchemy as sa

from jobs_orchestration.db.platform import JobAuditLog


def audit_rows(engine) -> list[sa.Row]:
    with engine.connect() as connection:
        return list(connection.execute(sa.select(JobAuditLog.__table__).order_by(JobAuditLog.id)).all())


def step_metadata(result: dg.ExecuteInProcessResult, op_name: str) -> dict[str, Any]:
    """The op's output metadata on success, or its failure's metadata."""
    for event in result.events_for_node(op_name):
        if event.is_successful_output:
            return {key: value.value for key, value in event.step_output_data.metadata.items()}
        if event.is_step_failure:
            user_failure = event.step_failure_data.user_failure_data
            return {
                key: value.value for key, value in (user_failure.metadata if user_failure else {}).items()
            }
    raise AssertionError(f"no output or failure event for {op_name}")
