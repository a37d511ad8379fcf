"""Indexes for the snapshot cleanup: rows marked but not yet purged, and tombstones by purge time.

Revision ID: email_parser_0002_purge_indexes
Revises: email_parser_0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "email_parser_0002_purge_indexes"
down_revision: str | None = "email_parser_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AWAITING_PURGE = sa.text("deleted_at IS NOT NULL AND purged_at IS NULL")
PURGED = sa.text("purged_at IS NOT NULL")


def upgrade() -> None:
    # Small: only the rows whose file delete is pending, which each cleanup run retries first.
    op.create_index(
        "ix_snapshot_files_awaiting_purge",
        "snapshot_files",
        ["id"],
        unique=False,
        postgresql_where=AWAITING_PURGE,
        sqlite_where=AWAITING_PURGE,
    )
    # Partial, so marking a row (which leaves purged_at NULL) does not add an entry to it.
    op.create_index(
        "ix_snapshot_files_purged_at",
        "snapshot_files",
        ["purged_at"],
        unique=False,
        postgresql_where=PURGED,
        sqlite_where=PURGED,
    )


def downgrade() -> None:
    op.drop_index("ix_snapshot_files_purged_at", table_name="snapshot_files")
    op.drop_index("ix_snapshot_files_awaiting_purge", table_name="snapshot_files")
