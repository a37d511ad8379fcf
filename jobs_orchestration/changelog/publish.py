"""Publishing the changelog outbox to SNS: at least once, with a stable id in every message.

Rows are committed with `published_at` NULL (see record.py); this module publishes them with
`PublishBatch` (10 entries a call, see `jobs_orchestration.aws.sns`), retries only the entries that failed, and marks each row published
or records the attempt and its error. A crash or an SNS outage between the insert and the update
leaves rows unpublished, and the next run (or the outbox sweep) publishes them. A crash after SNS
accepted a message but before the update commits publishes it again: delivery is at-least-once, and
subscribers deduplicate on the `eventId` message attribute, which never changes for an event.

When SNS stops answering (the client's own short retries exhausted), publishing stops at once: the
page in hand is marked with the error and the rows after it are left untouched for the next attempt,
instead of spending the client's retries on every page of a long backlog.

On PostgreSQL the rows are claimed with `FOR UPDATE SKIP LOCKED`, so a run and the sweep (or two
sweeps) never publish the same row at the same time.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.engine import Engine

from jobs_orchestration.aws import sns
from jobs_orchestration.aws.batching import DEFAULT_ATTEMPTS, DEFAULT_RETRY_DELAY_SECONDS, SNS_PUBLISH_BATCH
from jobs_orchestration.connectivity import ServiceUnreachable
from jobs_orchestration.db.platform import DatasetChangelogEvent

PAGE_ROWS = 100
"""Rows claimed (and locked) per transaction while publishing."""

Event = DatasetChangelogEvent

SNS_MAX_MESSAGE_BYTES = SNS_PUBLISH_BATCH.bytes or 0
"""The largest message SNS publishes, body and attributes together (as much as a whole batch)."""


@dataclass
class PublishReport:
    published: int = 0
    failed: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    """event id -> last error, for the rows left unpublished."""
    unreachable: str | None = None
    """Why publishing stopped early: SNS did not answer. Rows not reached are not counted in `failed`."""


class SnsUnreachable(ServiceUnreachable):
    def __init__(self, message: str, errors: dict[str, str]) -> None:
        super().__init__(message)
        self.errors = errors
        """event id -> error of every entry of the page not published."""


def message_body(row: Any) -> str:
    """The body downstream consumers already read, key for key as the original published it."""
    return json.dumps(
        {
            "datasetId": str(row.dataset_id),
            "organizationId": str(row.organization_id),
            "eventCategory": row.event_category,
            "eventType": row.event_type,
            "eventDetail": row.detail,
        },
        separators=(",", ":"),
    )


def message_attributes(row: Any) -> dict[str, dict[str, str]]:
    """Attributes subscribers filter and deduplicate on, leaving the body unchanged."""
    return {
        "eventId": {"DataType": "String", "StringValue": row.event_id},
        "eventType": {"DataType": "String", "StringValue": row.event_type},
        "eventCategory": {"DataType": "String", "StringValue": row.event_category},
        "organizationId": {"DataType": "Number", "StringValue": str(row.organization_id)},
        "datasetId": {"DataType": "Number", "StringValue": str(row.dataset_id)},
    }


def largest_detail_bytes() -> int:
    """The most bytes an event detail may take, serialized as `message_body` writes it, for the
    published message to fit SNS's limit with the largest values the other fields can hold."""
    columns = Event.__table__.c
    widest_id = str(-(2**63))
    envelope = SimpleNamespace(
        dataset_id=widest_id,
        organization_id=widest_id,
        event_category="X" * _string_length(columns.event_category),
        event_type="X" * _string_length(columns.event_type),
        event_id="X" * _string_length(columns.event_id),
        detail={},
    )
    attributes = sum(
        len(name) + len(value["DataType"]) + len(value["StringValue"])
        for name, value in message_attributes(envelope).items()
    )
    return SNS_MAX_MESSAGE_BYTES - len(message_body(envelope).encode()) + len("{}") - attributes


def _string_length(column: sa.Column) -> int:
    assert isinstance(column.type, sa.String) and column.type.length, f"{column} has no length"
    return column.type.length


def detail_bytes(detail: Any) -> int:
    """Bytes of a detail in the published body (as `message_body` serializes it)."""
    return len(json.dumps(detail, separators=(",", ":")).encode())


def publish_outbox(
    engine: Engine,
    sns_client: Any,
    topic_arn: str,
    *,
    event_ids: Sequence[str] | None = None,
    recorded_before: dt.datetime | None = None,
    max_attempts_so_far: int | None = None,
    attempts: int = DEFAULT_ATTEMPTS,
    retry_delay_seconds: float = DEFAULT_RETRY_DELAY_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> PublishReport:
    """Publish unpublished rows, page by page, each page in its own transaction.

    `event_ids` limits it to those events (a run publishing what it recorded, and any copy a crashed
    earlier delivery left behind); `recorded_before` to rows older than that (the sweep, which leaves
    fresh rows to the run that recorded them); `max_attempts_so_far` skips rows that already failed
    that many times (left for a person to look at).
    """
    report = PublishReport()
    conditions: list[sa.ColumnElement[bool]] = [Event.published_at.is_(None)]
    if recorded_before is not None:
        conditions.append(Event.recorded_at < recorded_before)
    if max_attempts_so_far is not None:
        conditions.append(Event.publish_attempts < max_attempts_so_far)
    id_chunks: list[Sequence[str] | None] = [None]
    if event_ids is not None:
        id_chunks = [event_ids[start : start + 1_000] for start in range(0, len(event_ids), 1_000)]
    for chunk in id_chunks:
        after_id = 0
        while report.unreachable is None:
            with engine.begin() as connection:
                rows = _claim_page(connection, conditions, chunk, after_id)
                if not rows:
                    break
                after_id = rows[-1].id
                try:
                    outcome = publish_rows(
                        sns_client,
                        topic_arn,
                        rows,
                        attempts=attempts,
                        retry_delay_seconds=retry_delay_seconds,
                        sleep=sleep,
                    )
                except SnsUnreachable as outage:
                    outcome = outage.errors
                    report.unreachable = str(outage)
                _mark(connection, rows, outcome)
            report.published += len(rows) - len(outcome)
            report.failed += len(outcome)
            report.errors.update(outcome)
    return report


def _claim_page(
    connection: Connection, conditions: list[Any], event_ids: Sequence[str] | None, after_id: int
):
    statement = (
        sa.select(
            Event.id,
            Event.event_id,
            Event.organization_id,
            Event.dataset_id,
            Event.event_type,
            Event.event_category,
            Event.detail,
        )
        .where(*conditions, Event.id > after_id)
        .order_by(Event.id)
        .limit(PAGE_ROWS)
    )
    if event_ids is not None:
        statement = statement.where(Event.event_id.in_(event_ids))
    if connection.dialect.name == "postgresql":
        statement = statement.with_for_update(skip_locked=True)
    return connection.execute(statement).all()


def publish_rows(
    sns_client: Any,
    topic_arn: str,
    rows: Sequence[Any],
    *,
    attempts: int = DEFAULT_ATTEMPTS,
    retry_delay_seconds: float = DEFAULT_RETRY_DELAY_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, str]:
    """PublishBatch the rows, sending again only the entries that failed transiently; returns event id ->
    error of those that never got through. Raises `SnsUnreachable`, naming the entries not published,
    when SNS does not answer."""
    result = sns.publish_messages(
        sns_client,
        topic_arn,
        rows,
        lambda row: {"Message": message_body(row), "MessageAttributes": message_attributes(row)},
        attempts=attempts,
        retry_delay_seconds=retry_delay_seconds,
        sleep=sleep,
    )
    errors = {row.event_id: str(failure) for row, failure in result.failed}
    if result.unanswered:
        reason = f"SNS unreachable: {result.unanswered_error}"
        raise SnsUnreachable(reason, {**errors, **{row.event_id: reason for row in result.unanswered}})
    return errors


def _mark(connection: Connection, rows: Sequence[Any], errors: dict[str, str]) -> None:
    """One UPDATE for the published rows and one per distinct error for the others."""
    now = dt.datetime.now(dt.UTC)
    published = [row.id for row in rows if row.event_id not in errors]
    if published:
        connection.execute(
            sa.update(Event)
            .where(Event.id.in_(published))
            .values(published_at=now, publish_attempts=Event.publish_attempts + 1, last_publish_error=None)
        )
    by_error: dict[str, list[int]] = {}
    for row in rows:
        if row.event_id in errors:
            by_error.setdefault(errors[row.event_id][:2000], []).append(row.id)
    for error, ids in by_error.items():
        connection.execute(
            sa.update(Event)
            .where(Event.id.in_(ids))
            .values(publish_attempts=Event.publish_attempts + 1, last_publish_error=error)
        )


def count_stale_unpublished(
    connection: Connection, recorded_before: dt.datetime, max_attempts_so_far: int | None = None
) -> int:
    """How many rows the sweep would publish (cheap: the partial index on unpublished rows)."""
    statement = (
        sa.select(sa.func.count())
        .select_from(Event)
        .where(Event.published_at.is_(None), Event.recorded_at < recorded_before)
    )
    if max_attempts_so_far is not None:
        statement = statement.where(Event.publish_attempts < max_attempts_so_far)
    return connection.scalar(statement) or 0
