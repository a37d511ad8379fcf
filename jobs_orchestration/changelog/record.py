"""Recording changelog messages: check every reference and detail, then store the events of every
acceptable message in one multi-row insert, as outbox rows waiting to be published.

A message is all or nothing: if its organization, its user (by node id) or its dataset (in that
organization) does not exist, or any of its events does not decode, it is refused with the reason and
none of its events is stored. Messages of one batch are judged separately.

Each event gets a stable `event_id` derived from the producer's job id and the event's index in the
message, so a redelivered message inserts nothing (`ON CONFLICT DO NOTHING`) and subscribers can
deduplicate on the id the published copy carries.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from jobs_orchestration.changelog.events import (
    InvalidChangelogEvent,
    event_category,
    parse_event_timestamp,
    validate_event,
)
from jobs_orchestration.db.platform import Dataset, DatasetChangelogEvent, JobAuditLog, Organization, User
from jobs_orchestration.failures import describe, is_transient

EVENT_ID_NAMESPACE = uuid.UUID("6f1d3c52-7b1e-4f0a-9c55-2f0b8f4e6a10")
"""Namespace of the uuid5 event ids: fixed forever, or redelivered messages would get new ids."""

AUDIT_JOB_NAME = "DatasetChangelogEventJob"


@dataclass(frozen=True)
class IncomingEvent:
    event_type: str
    detail_json: str = "{}"
    timestamp: str | None = None


@dataclass(frozen=True)
class IncomingMessage:
    """One DatasetChangelogEventJob message."""

    organization_id: int
    dataset_id: int
    user_node_id: str
    events: Sequence[IncomingEvent]
    job_id: str = ""
    trace_id: str = ""


@dataclass
class MessageOutcome:
    message: IncomingMessage
    job_id: str
    event_ids: list[str] = field(default_factory=list)
    refused_reason: str | None = None

    @property
    def refused(self) -> bool:
        return self.refused_reason is not None


@dataclass
class RecordResult:
    outcomes: list[MessageOutcome]
    inserted: int

    @property
    def event_ids(self) -> list[str]:
        return [event_id for outcome in self.outcomes for event_id in outcome.event_ids]

    @property
    def refused(self) -> list[MessageOutcome]:
        return [outcome for outcome in self.outcomes if outcome.refused]


def event_id_for(job_id: str, index: int) -> str:
    """The stable id of the `index`-th event of the message with producer job id `job_id`."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{job_id}#{index}"))


def decode_events(
    message: IncomingMessage, now: dt.datetime
) -> list[tuple[str, dict[str, Any], dt.datetime]]:
    """(event type, normalized detail, occurred at) of every event, or `InvalidChangelogEvent`."""
    decoded = []
    for index, event in enumerate(message.events):
        where = f"events[{index}]"
        try:
            raw = json.loads(event.detail_json) if event.detail_json else {}
        except json.JSONDecodeError as error:
            raise InvalidChangelogEvent(
                f"{where}.eventDetail is not valid JSON ({error.msg}): {event.detail_json[:200]!r}"
            ) from None
        try:
            detail = validate_event(event.event_type, raw)
            occurred_at = parse_event_timestamp(event.timestamp, now=now)
        except InvalidChangelogEvent as error:
            raise InvalidChangelogEvent(f"{where}: {error}") from None
        decoded.append((event.event_type, detail, occurred_at))
    return decoded


def record_messages(
    connection: Connection,
    messages: Sequence[IncomingMessage],
    *,
    fallback_job_ids: Sequence[str] | None = None,
    dagster_run_id: str | None = None,
    now: dt.datetime | None = None,
) -> RecordResult:
    """Store the events of every acceptable message in the caller's transaction; refuse the others.

    `fallback_job_ids[i]` names message i when it carries no producer job id (a launch from the UI),
    so a retried op still derives the same event ids.
    """
    now = now or dt.datetime.now(dt.UTC)
    outcomes = [
        MessageOutcome(
            message,
            message.job_id or (fallback_job_ids[index] if fallback_job_ids else f"message-{index}"),
        )
        for index, message in enumerate(messages)
    ]
    organizations, users, datasets = _existing_references(connection, messages)
    rows: list[dict[str, Any]] = []
    for outcome in outcomes:
        message = outcome.message
        reason = _missing_reference(message, organizations, users, datasets)
        decoded: list[tuple[str, dict[str, Any], dt.datetime]] = []
        if reason is None:
            try:
                decoded = decode_events(message, now)
            except InvalidChangelogEvent as error:
                reason = str(error)
        if reason is not None:
            outcome.refused_reason = reason
            continue
        for index, (event_type, detail, occurred_at) in enumerate(decoded):
            event_id = event_id_for(outcome.job_id, index)
            outcome.event_ids.append(event_id)
            rows.append(
                {
                    "event_id": event_id,
                    "organization_id": message.organization_id,
                    "dataset_id": message.dataset_id,
                    "user_id": users[message.user_node_id],
                    "user_node_id": message.user_node_id,
                    "event_type": event_type,
                    "event_category": event_category(event_type),
                    "detail": detail,
                    "occurred_at": occurred_at,
                    "recorded_at": now,
                    "trace_id": message.trace_id or None,
                    "job_id": outcome.job_id,
                    "published_at": None,
                    "publish_attempts": 0,
                    "last_publish_error": None,
                }
            )
    if connection.dialect.name != "postgresql":
        # SQLite (local runs only) enforces no column length, so nothing here fails for one message.
        inserted = insert_events(connection, rows)
        _write_audit_rows(connection, outcomes, dagster_run_id, now)
        return RecordResult(outcomes, inserted)
    try:
        with connection.begin_nested():
            inserted = insert_events(connection, rows)
            _write_audit_rows(connection, outcomes, dagster_run_id, now)
    except sa.exc.DBAPIError as error:
        if is_transient(error):
            raise
        inserted = _record_one_by_one(connection, outcomes, rows, dagster_run_id, now)
    return RecordResult(outcomes, inserted)


def _record_one_by_one(
    connection: Connection,
    outcomes: Sequence[MessageOutcome],
    rows: Sequence[dict[str, Any]],
    dagster_run_id: str | None,
    now: dt.datetime,
) -> int:
    """The batch's statements failed for good on some message's data: store each message in its own
    savepoint, so the one the database refuses is refused alone, with the database's reason."""
    inserted = 0
    for outcome in outcomes:
        own_rows = [row for row in rows if row["event_id"] in outcome.event_ids]
        try:
            with connection.begin_nested():
                inserted += insert_events(connection, own_rows)
                _write_audit_rows(connection, [outcome], dagster_run_id, now)
        except sa.exc.DBAPIError as error:
            if is_transient(error):
                raise
            outcome.refused_reason = f"the database refused its rows: {describe(error)}"
            outcome.event_ids = []
            try:
                with connection.begin_nested():
                    _write_audit_rows(connection, [outcome], dagster_run_id, now)
            except sa.exc.DBAPIError as audit_error:
                if is_transient(audit_error):
                    raise
                # The dead letter carries what the audit row could not.
                outcome.refused_reason += f"; its audit row was refused too: {describe(audit_error)}"
    return inserted


def insert_events(connection: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Insert rows, skipping event ids already stored; returns how many were new.

    SQLAlchemy's "insertmanyvalues" sends these as multi-row `INSERT ... VALUES (...), (...)`
    statements of up to 1,000 rows, from one cached compiled statement (building one giant
    `.values([...])` statement is slower than that for large batches).
    """
    if not rows:
        return 0
    table = DatasetChangelogEvent.__table__
    dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = (
        dialect_insert(table).on_conflict_do_nothing(index_elements=["event_id"]).returning(table.c.id)
    )
    return len(connection.execute(statement, list(rows)).all())


def _existing_references(
    connection: Connection, messages: Iterable[IncomingMessage]
) -> tuple[set[int], dict[str, int], set[tuple[int, int]]]:
    """The organizations, users (node id -> id) and (dataset, organization) pairs that exist, in
    three set queries whatever the number of messages."""
    messages = list(messages)
    if not messages:
        return set(), {}, set()
    organization_ids = {message.organization_id for message in messages}
    user_node_ids = {message.user_node_id for message in messages}
    dataset_ids = {message.dataset_id for message in messages}
    organizations = set(
        connection.scalars(sa.select(Organization.id).where(Organization.id.in_(organization_ids)))
    )
    users = {
        node_id: user_id
        for node_id, user_id in connection.execute(
            sa.select(User.node_id, User.id).where(User.node_id.in_(user_node_ids))
        )
    }
    datasets = set(
        connection.execute(
            sa.select(Dataset.id, Dataset.organization_id).where(Dataset.id.in_(dataset_ids))
        ).tuples()
    )
    return organizations, users, datasets


def _missing_reference(
    message: IncomingMessage,
    organizations: set[int],
    users: dict[str, int],
    datasets: set[tuple[int, int]],
) -> str | None:
    if message.organization_id not in organizations:
        return f"organizationId {message.organization_id} does not exist"
    if message.user_node_id not in users:
        return f"userId {message.user_node_id!r} does not exist"
    if (message.dataset_id, message.organization_id) not in datasets:
        return f"datasetId {message.dataset_id} does not exist in organization {message.organization_id}"
    return None


def _write_audit_rows(
    connection: Connection, outcomes: Sequence[MessageOutcome], dagster_run_id: str | None, now: dt.datetime
) -> None:
    if not outcomes:
        return
    connection.execute(
        sa.insert(JobAuditLog),
        [
            {
                "job_name": AUDIT_JOB_NAME,
                "job_id": outcome.job_id,
                "trace_id": outcome.message.trace_id or None,
                "user_id": outcome.message.user_node_id,
                "organization_id": outcome.message.organization_id,
                "resource_ids": [outcome.message.dataset_id],
                "outcome": "refused" if outcome.refused else "recorded",
                "detail": {"reason": outcome.refused_reason}
                if outcome.refused
                else {"event_ids": outcome.event_ids},
                "dagster_run_id": dagster_run_id,
                "created_at": now,
            }
            for outcome in outcomes
        ],
    )
