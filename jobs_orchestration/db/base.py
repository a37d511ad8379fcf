"""Declarative bases of the two databases the jobs work on.

The platform and the Email Parser keep separate metadata (and separate Alembic branches) because in
production they are separate databases; locally and in tests they may share one.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase

# Stable constraint names, so migrations can drop and alter what they created on every dialect.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONDocument = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
"""A JSON column: JSONB on PostgreSQL, JSON text elsewhere."""

BigIntPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""A 64-bit key that is still SQLite's auto-incrementing rowid."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def string_enum(enum_cls: type[enum.Enum], name: str) -> sa.Enum:
    """A VARCHAR column with a CHECK constraint holding an enum's values (no native PostgreSQL type)."""
    return sa.Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=max(len(member.value) for member in enum_cls),
        values_callable=lambda cls: [member.value for member in cls],
        validate_strings=True,
    )


class PlatformBase(DeclarativeBase):
    # Every model here maps one table: typed as such, its columns keep their types for the checker.
    __table__: ClassVar[sa.Table]
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: dict[Any, Any] = {
        dt.datetime: sa.DateTime(timezone=True),
        dict[str, Any]: JSONDocument,
        list[Any]: JSONDocument,
    }


class EmailParserBase(DeclarativeBase):
    __table__: ClassVar[sa.Table]
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: dict[Any, Any] = {
        dt.datetime: sa.DateTime(timezone=True),
    }
