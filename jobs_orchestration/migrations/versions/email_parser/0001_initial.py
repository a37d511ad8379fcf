"""The Email Parser's tables: parse sessions, orders, order attachments and snapshot files.

Revision ID: email_parser_0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "email_parser_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("email_parser",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("reference", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
    )
    op.create_table(
        "parse_sessions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("subject", sa.String(length=512), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parse_sessions")),
    )
    op.create_table(
        "order_attachments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("file_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_attachments_order_id_orders"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_attachments")),
    )
    op.create_index(op.f("ix_order_attachments_file_id"), "order_attachments", ["file_id"], unique=False)
    op.create_index(op.f("ix_order_attachments_order_id"), "order_attachments", ["order_id"], unique=False)
    op.create_table(
        "snapshot_files",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("file_id", sa.String(length=64), nullable=False),
        sa.Column(
            "snapshot_type",
            sa.Enum(
                "ParseSessionSnapshot",
                "OrderAttachmentSnapshot",
                name="snapshot_type",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("parse_session_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("storage_key", sa.String(length=1024), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("purge_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_snapshot_files_order_id_orders"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["parse_session_id"],
            ["parse_sessions.id"],
            name=op.f("fk_snapshot_files_parse_session_id_parse_sessions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_snapshot_files")),
        sa.UniqueConstraint("file_id", name=op.f("uq_snapshot_files_file_id")),
    )
    op.create_index("ix_snapshot_files_deleted_at", "snapshot_files", ["deleted_at"], unique=False)
    op.create_index(
        "ix_snapshot_files_type_created_at", "snapshot_files", ["snapshot_type", "created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_snapshot_files_type_created_at", table_name="snapshot_files")
    op.drop_index("ix_snapshot_files_deleted_at", table_name="snapshot_files")
    op.drop_table("snapshot_files")
    op.drop_index(op.f("ix_order_attachments_order_id"), table_name="order_attachments")
    op.drop_index(op.f("ix_order_attachments_file_id"), table_name="order_attachments")
    op.drop_table("order_attachments")
    op.drop_table("parse_sessions")
    op.drop_table("orders")
