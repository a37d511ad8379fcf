"""Let the snapshot cleanup's two row updates be HOT: no index on the columns they write, and room
on each page for the new row versions.

PostgreSQL writes an update as a heap-only tuple (no new entry in any index) only when no indexed
column changes (a partial index's predicate counts) and the new version fits on the same page. The
cleanup writes `deleted_at` (mark) and then `purged_at` (purge) on every deleted row; the indexes on
those columns made both updates touch all six indexes of the table. They go, and so does the need:
- rows awaiting their file delete are found by one scan at the start of a run (there are few, and
  only after a failure or a crash);
- the 30-day savings and the tombstone purge read `purged_at` with one scan per run.
A fillfactor of 50 keeps half of each new page free: marking a page's rows needs room for a second
version of each while the mark's transaction is open; the purge reuses the space the mark's dead
versions leave once PostgreSQL prunes the page. Pages written before this migration keep their packing
until the table is rewritten (VACUUM FULL, pg_repack); their updates are simply not HOT.

Revision ID: email_parser_0003_hot_updates
Revises: email_parser_0002_purge_indexes
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "email_parser_0003_hot_updates"
down_revision: str | None = "email_parser_0002_purge_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AWAITING_PURGE = sa.text("deleted_at IS NOT NULL AND purged_at IS NULL")
PURGED = sa.text("purged_at IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_snapshot_files_purged_at", table_name="snapshot_files")
    op.drop_index("ix_snapshot_files_awaiting_purge", table_name="snapshot_files")
    op.drop_index("ix_snapshot_files_deleted_at", table_name="snapshot_files")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE snapshot_files SET (fillfactor = 50)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE snapshot_files RESET (fillfactor)")
    op.create_index("ix_snapshot_files_deleted_at", "snapshot_files", ["deleted_at"], unique=False)
    op.create_index(
        "ix_snapshot_files_awaiting_purge",
        "snapshot_files",
        ["id"],
        unique=False,
        postgresql_where=AWAITING_PURGE,
        sqlite_where=AWAITING_PURGE,
    )
    op.create_index(
        "ix_snapshot_files_purged_at",
        "snapshot_files",
        ["purged_at"],
        unique=False,
        postgresql_where=PURGED,
        sqlite_where=PURGED,
    )
