"""What a job type is to the intake: its message model (`JobModel`) and how its messages share a run
(`JobType`). The job types themselves are declared in `jobs_orchestration.intake.messages`.

Nothing here imports Dagster: which run a batch becomes is declared beside the job's Dagster definitions
(`jobs_orchestration.defs.<domain>.job_types`).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Generic, TypeVar

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

RowId = Annotated[int, Field(gt=0)]
"""A database id: the tables use positive serials, so zero and negatives can name no row. The upper
bound is the column's (see `FieldLimit`)."""

_INTEGER_RANGES = ((sa.SmallInteger, 2**15 - 1), (sa.BigInteger, 2**63 - 1), (sa.Integer, 2**31 - 1))


@dataclass(frozen=True)
class FieldLimit:
    """The most a message field may hold: what the column it is stored in holds."""

    field: str
    """The field's name in the message (camelCase)."""
    column: sa.Column
    max_length: int | None = None
    max_value: int | None = None

    @classmethod
    def of(cls, field: str, column: sa.Column) -> FieldLimit:
        if isinstance(column.type, sa.String) and column.type.length:
            return cls(field, column, max_length=column.type.length)
        for integer_type, largest in _INTEGER_RANGES:
            if isinstance(column.type, integer_type):
                return cls(field, column, max_value=largest)
        raise TypeError(f"{column} bounds nothing a message field could exceed")

    @property
    def where(self) -> str:
        return f"{self.column.table.name}.{self.column.name}"

    def problem(self, value: Any) -> str | None:
        """Why `value` does not fit, or None."""
        if self.max_length is not None and isinstance(value, str) and len(value) > self.max_length:
            return (
                f"field {self.field} is {len(value)} characters long; {self.where} holds at most "
                f"{self.max_length}"
            )
        if self.max_value is not None and isinstance(value, int) and value > self.max_value:
            return f"field {self.field} is {value}; {self.where} holds at most {self.max_value}"
        return None


class MessageFields(BaseModel):
    # strict: the producers send JSON numbers and booleans, so "42" for an id is a producer bug to
    # surface, not to paper over.
    model_config = ConfigDict(extra="allow", alias_generator=to_camel, populate_by_name=True, strict=True)

    @property
    def unknown_fields(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class JobModel(MessageFields):
    """A job message's fields; a subclass names its type, family, storage columns and business ids."""

    type_name: ClassVar[str]
    job_family: ClassVar[str]
    stored_in: ClassVar[dict[str, sa.Column]]
    """Each field's attribute name -> the column its value is stored in (ids, the audit row, the
    changelog row): a value the column cannot hold is refused here, not by the database inside a run."""

    id: str = Field(min_length=1, description="The producer's job id (a UUID)")

    @classmethod
    @functools.cache
    def field_limits(cls) -> list[FieldLimit]:
        return [
            FieldLimit.of(cls.model_fields[name].alias or name, column)
            for name, column in cls.stored_in.items()
        ]

    @model_validator(mode="after")
    def _fits_where_stored(self) -> JobModel:
        problems = [
            problem
            for limit, name in zip(self.field_limits(), self.stored_in, strict=True)
            if (problem := limit.problem(getattr(self, name))) is not None
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def organization_key(self) -> str:
        organization_id = getattr(self, "organization_id", None)
        return "all" if organization_id is None else str(organization_id)

    def business_ids(self) -> list[str]:
        """The ids that say what the job acts on, in a fixed order."""
        raise NotImplementedError

    @property
    def idempotency_key(self) -> str:
        """Same job type, same targets and same producer job id: the same piece of work. A redelivered
        or re-sent message yields the same key; a new request from the producer (new id) does not."""
        return ":".join([self.type_name, *self.business_ids(), f"id={self.id}"])

    @property
    def short_key(self) -> str:
        """A fixed-length digest of the idempotency key, for cursors and tags."""
        return hashlib.sha256(self.idempotency_key.encode()).hexdigest()[:24]


ModelT = TypeVar("ModelT", bound=JobModel)


def one_group(job: JobModel) -> str:
    """Every message of the type may share a run."""
    return ""


def by_organization(job: JobModel) -> str:
    """A run holds one organization's work: it carries that organization's tag in the UI, and a refused
    or failed request never fails another organization's run."""
    return job.organization_key


@dataclass(frozen=True)
class JobType(Generic[ModelT]):
    """One kind of job message: its model, and which messages of a tick may become one run."""

    model: type[ModelT]
    group: Callable[[ModelT], str] = one_group
    """Messages with the same group share a run; each group gets runs of its own."""
    most_per_run: int | None = None
    """Messages per run at most, when fewer than the intake's batch size."""
    many_per_run: bool = False
    """Messages so cheap to do that a run's start costs far more than they do: runs take the intake's
    larger `changelog_batch_size` instead of its `batch_size`."""

    @property
    def name(self) -> str:
        return self.model.type_name

    def run_size(self, batch_size: int, large_batch_size: int) -> int:
        size = large_batch_size if self.many_per_run else batch_size
        return size if self.most_per_run is None else min(self.most_per_run, size)
