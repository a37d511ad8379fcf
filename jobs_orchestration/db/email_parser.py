"""Models of the Email Parser's tables: parse sessions, orders and their snapshot files."""

from __future__ import annotations

import datetime as dt
import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from jobs_orchestration.db.base import BigIntPK, EmailParserBase, string_enum, utcnow


class SnapshotType(enum.StrEnum):
    PARSE_SESSION = "ParseSessionSnapshot"
    """Deleted once older than the retention period, unless an order attachment references it."""
    ORDER_ATTACHMENT = "OrderAttachmentSnapshot"
    """Never deleted automatically."""


class ParseSession(EmailParserBase):
    __tablename__ = "parse_sessions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    subject: Mapped[str] = mapped_column(sa.String(512), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Order(EmailParserBase):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    reference: Mapped[str] = mapped_column(sa.String(255))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class OrderAttachment(EmailParserBase):
    __tablename__ = "order_attachments"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    file_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SnapshotFile(EmailParserBase):
    """A stored snapshot (one-page PDF or image). `deleted_at` marks it for deletion, `purged_at`
    records that its stored file is gone; the row stays as a tombstone after both."""

    __tablename__ = "snapshot_files"
    # No index names `deleted_at` or `purged_at`, and the table has a fillfactor of 50 on PostgreSQL
    # (migration email_parser_0003_hot_updates): the cleanup's mark and purge updates stay HOT.
    __table_args__ = (sa.Index("ix_snapshot_files_type_created_at", "snapshot_type", "created_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    file_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    snapshot_type: Mapped[SnapshotType] = mapped_column(string_enum(SnapshotType, "snapshot_type"))
    parse_session_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("parse_sessions.id", ondelete="SET NULL")
    )
    order_id: Mapped[int | None] = mapped_column(sa.ForeignKey("orders.id", ondelete="SET NULL"))
    storage_key: Mapped[str] = mapped_column(sa.String(1024))
    size_bytes: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    content_type: Mapped[str] = mapped_column(sa.String(128), default="application/pdf")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[dt.datetime | None]
    purged_at: Mapped[dt.datetime | None]
    purge_error: Mapped[str | None] = mapped_column(sa.Text)
