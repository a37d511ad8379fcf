"""The job messages the platform's services put on the queue, parsed from their exact JSON.

Each body is an object with one key, the job's type name, wrapping the job's camelCase fields
(see the design's messages.md). Unknown fields are kept (for the record); a missing or ill-typed field
is an error naming the field and the value it had.

Each accepted job type is declared here, its model beside its `JobType` (which messages share a run),
and listed in `JOB_TYPES`; the run a batch becomes is declared beside the job's Dagster definitions
(`defs/<domain>/job_types.py`). A model of another domain subclasses `JobModel` in its own core module
and its `JobType` is added to `JOB_TYPES` here.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

import sqlalchemy as sa
from pydantic import Field, ValidationError, model_validator

from jobs_orchestration.changelog.events import parse_event_timestamp, validate_event
from jobs_orchestration.changelog.publish import detail_bytes, largest_detail_bytes
from jobs_orchestration.db.platform import (
    Dataset,
    DatasetChangelogEvent,
    JobAuditLog,
    Organization,
    Package,
)
from jobs_orchestration.intake.job_types import (
    JobModel,
    JobType,
    MessageFields,
    ModelT,
    RowId,
    by_organization,
)

MAX_VALUE_IN_REASON = 200
"""How much of an offending value a rejection reason quotes."""

MAX_NESTING = 32
"""The deepest a message's JSON may nest (the deepest real event detail is four levels)."""

SQS_MAX_BODY_BYTES = 256 * 1024
"""The largest message body SQS accepts."""

LARGEST_DETAIL_BYTES = largest_detail_bytes()


class MessageRejected(ValueError):
    """A message body that can never become a job: it goes to the dead-letter queue with `reason`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DeletePackageJob(JobModel):
    type_name: ClassVar[str] = "DeletePackageJob"
    job_family: ClassVar[str] = "deletion"

    package_id: RowId
    organization_id: RowId
    user_id: str
    trace_id: str

    stored_in: ClassVar[dict[str, sa.Column]] = {
        "package_id": Package.__table__.c.id,
        "organization_id": Organization.__table__.c.id,
        "user_id": JobAuditLog.__table__.c.user_id,
        "trace_id": JobAuditLog.__table__.c.trace_id,
        "id": JobAuditLog.__table__.c.job_id,
    }

    def business_ids(self) -> list[str]:
        return [f"org={self.organization_id}", f"package={self.package_id}"]


DELETE_PACKAGE = JobType(DeletePackageJob, group=by_organization)


class DeleteDatasetJob(JobModel):
    type_name: ClassVar[str] = "DeleteDatasetJob"
    job_family: ClassVar[str] = "deletion"

    dataset_id: RowId
    organization_id: RowId
    user_id: str
    trace_id: str

    stored_in: ClassVar[dict[str, sa.Column]] = {
        "dataset_id": Dataset.__table__.c.id,
        "organization_id": Organization.__table__.c.id,
        "user_id": JobAuditLog.__table__.c.user_id,
        "trace_id": JobAuditLog.__table__.c.trace_id,
        "id": JobAuditLog.__table__.c.job_id,
    }

    def business_ids(self) -> list[str]:
        return [f"org={self.organization_id}", f"dataset={self.dataset_id}"]


DELETE_DATASET = JobType(DeleteDatasetJob, group=by_organization, most_per_run=1)
"""A dataset deletion is a run of its own: it can take long, and a run per dataset keeps them apart."""


class CachePopulationJob(JobModel):
    """A storage totals refresh for one organization, or for all of them when `organizationId` is
    absent or null."""

    type_name: ClassVar[str] = "CachePopulationJob"
    job_family: ClassVar[str] = "storage"

    dry_run: bool
    organization_id: RowId | None = None
    delete_redis_data: bool | None = Field(default=None, description="A cache of the old system; ignored")

    stored_in: ClassVar[dict[str, sa.Column]] = {
        "organization_id": Organization.__table__.c.id,
        "id": JobAuditLog.__table__.c.job_id,
    }

    def business_ids(self) -> list[str]:
        return [f"org={self.organization_key}", f"dry_run={str(self.dry_run).lower()}"]


def _organization_and_dry_run(job: CachePopulationJob) -> str:
    return f"{job.organization_key}:{job.dry_run}"


CACHE_POPULATION = JobType(CachePopulationJob, group=_organization_and_dry_run)
"""A run refreshes one organization (or all) one way: repeats in a batch collapse into it."""


class ChangelogEvent(MessageFields):
    event_type: str
    event_detail: dict[str, Any]
    timestamp: str | None = Field(default=None, description="ISO zoned timestamp; absent means now")


class DatasetChangelogEventJob(JobModel):
    type_name: ClassVar[str] = "DatasetChangelogEventJob"
    job_family: ClassVar[str] = "changelog"

    organization_id: RowId
    dataset_id: RowId
    user_id: str
    trace_id: str
    events: list[ChangelogEvent] = Field(default_factory=list)

    stored_in: ClassVar[dict[str, sa.Column]] = {
        "organization_id": DatasetChangelogEvent.__table__.c.organization_id,
        "dataset_id": DatasetChangelogEvent.__table__.c.dataset_id,
        "user_id": DatasetChangelogEvent.__table__.c.user_node_id,
        "trace_id": DatasetChangelogEvent.__table__.c.trace_id,
        "id": DatasetChangelogEvent.__table__.c.job_id,
    }

    @model_validator(mode="before")
    @classmethod
    def _single_event_form(cls, data: Any) -> Any:
        """The older producers send one event as top-level `eventType` + `eventDetail`."""
        if not isinstance(data, dict) or data.get("events") is not None:
            return data
        has_type, has_detail = "eventType" in data, "eventDetail" in data
        if has_type != has_detail:
            missing = "eventDetail" if has_type else "eventType"
            raise ValueError(f"{missing} is missing: the single-event form needs eventType and eventDetail")
        if not has_type:
            return {key: value for key, value in data.items() if key != "events"}
        single = {"eventType": data["eventType"], "eventDetail": data["eventDetail"]}
        if "timestamp" in data:
            single["timestamp"] = data["timestamp"]
        rest = {
            key: value for key, value in data.items() if key not in ("eventType", "eventDetail", "timestamp")
        }
        return {**rest, "events": [single]}

    @model_validator(mode="after")
    def _validate_events(self) -> DatasetChangelogEventJob:
        for index, event in enumerate(self.events):
            try:
                validate_changelog_event(event)
            except ValueError as error:
                raise ValueError(f"events[{index}] ({event.event_type}): {error}") from None
        return self

    def business_ids(self) -> list[str]:
        return [f"org={self.organization_id}", f"dataset={self.dataset_id}"]


DATASET_CHANGELOG = JobType(DatasetChangelogEventJob, many_per_run=True)
"""One run may carry several organizations' events, and many of them: recording and publishing an event
costs far less than starting a run."""

JobMessage = JobModel
"""A parsed message of any accepted type (the handoff's name for it)."""

JOB_TYPES: dict[str, JobType] = {
    job_type.name: job_type
    for job_type in (DELETE_PACKAGE, DELETE_DATASET, CACHE_POPULATION, DATASET_CHANGELOG)
}
"""Every job type the intake accepts, by the name its messages carry; anything else is dead-lettered."""


def validate_changelog_event(event: ChangelogEvent) -> None:
    """The one place a changelog event's type, detail, timestamp and size are checked before a run is
    asked for; the changelog domain owns the event catalogue and the published form."""
    validate_event(event.event_type, event.event_detail)
    if event.timestamp is not None:
        parse_event_timestamp(event.timestamp)
    if (size := detail_bytes(event.event_detail)) > LARGEST_DETAIL_BYTES:
        raise ValueError(
            f"eventDetail takes {size} bytes as published; an SNS message leaves room for at most "
            f"{LARGEST_DETAIL_BYTES}"
        )


def parse_job_message(body: str) -> JobMessage:
    """Parse one queue message body, or raise `MessageRejected` saying what is wrong."""
    if isinstance(body, str) and (size := len(body.encode("utf-8", "surrogatepass"))) > SQS_MAX_BODY_BYTES:
        raise MessageRejected(f"body is {size} bytes; an SQS message holds at most {SQS_MAX_BODY_BYTES}")
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, TypeError) as error:
        raise MessageRejected(f"body is not JSON: {error}") from None
    except RecursionError:
        raise MessageRejected(f"body is nested deeper than {MAX_NESTING} levels") from None
    # Before anything quotes the document: quoting recurses.
    if (problem := _unstorable_text(document)) is not None:
        raise MessageRejected(problem)
    if not isinstance(document, dict) or len(document) != 1:
        raise MessageRejected(
            f"body must be an object with exactly one key, the job type name; got {_quote(document)}"
        )
    ((type_name, fields),) = document.items()
    job_type = JOB_TYPES.get(type_name)
    if job_type is None:
        raise MessageRejected(f"unknown job type {type_name!r}; known: {', '.join(sorted(JOB_TYPES))}")
    if not isinstance(fields, dict):
        raise MessageRejected(f"{type_name}: the fields must be a JSON object; got {_quote(fields)}")
    return _validated(job_type.model, fields)


def _validated(model: type[ModelT], fields: dict[str, Any]) -> ModelT:
    try:
        return model.model_validate(fields)
    except ValidationError as error:
        raise MessageRejected(f"{model.type_name}: {_describe(error)}") from None


def job_body(model: type[JobModel], **fields: Any) -> str:
    """The body a producer sends for a job of `model` with these fields (by attribute or camelCase name):
    checked by the model, then written by alias, with only the fields given. Raises `MessageRejected`."""
    job = _validated(model, fields)
    return json.dumps({model.type_name: job.model_dump(mode="json", by_alias=True, exclude_unset=True)})


_UNSTORABLE_CHARACTER = re.compile("[\x00\ud800-\udfff]")


def _unstorable_text(document: Any) -> str | None:
    """JSON escapes can carry a NUL or half of a surrogate pair: neither can be stored in PostgreSQL
    text or jsonb, nor encoded as UTF-8, so such a message would only fail later, inside a run. Deep
    nesting is refused too: no job message needs it, and it would exhaust the stack of whatever
    walks the document next. Walked without recursion for that reason."""
    stack: list[tuple[Any, str, int]] = [(document, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_NESTING:
            return f"{path or 'body'} is nested deeper than {MAX_NESTING} levels"
        if isinstance(value, str):
            if (found := _UNSTORABLE_CHARACTER.search(value)) is not None:
                char = found.group()
                what = "a NUL character" if char == "\x00" else f"a lone surrogate \\u{ord(char):04x}"
                return f"{path or 'body'} contains {what} at position {found.start()}: {_quote(value)}"
        elif isinstance(value, dict):
            for key, item in value.items():
                stack.append((key, f"key {key!r}" + (f" in {path}" if path else ""), depth + 1))
                stack.append((item, f"{path}.{key}" if path else key, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{index}]", depth + 1) for index, item in enumerate(value))
    return None


def _describe(error: ValidationError) -> str:
    problems = []
    for detail in error.errors(include_url=False):
        field = ".".join(str(part) for part in detail["loc"]) or "(message)"
        message = detail["msg"].removeprefix("Value error, ")
        if detail["type"] == "missing":
            problems.append(f"field {field} is missing")
        elif detail["loc"]:
            problems.append(f"field {field}: {message} (value {_quote(detail.get('input'))})")
        else:
            problems.append(message)
    return "; ".join(problems)


def _quote(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= MAX_VALUE_IN_REASON else text[:MAX_VALUE_IN_REASON] + "..."
