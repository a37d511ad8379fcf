"""The dataset_changelog_timeline view: a dataset's changelog in time order, for people and SQL tools.

Query it by dataset, ordered by time; the index ix_dataset_changelog_events_timeline
(dataset_id, occurred_at, id) serves both the filter and the order:

    SELECT occurred_at, event_category, event_type, user_email, detail
    FROM dataset_changelog_timeline
    WHERE dataset_id = 13
    ORDER BY occurred_at, id;

The revision id is cut to 32 characters, the width of alembic_version.version_num.

A view is not a table, so the models do not declare it and Alembic's autogenerate ignores it.

Revision ID: platform_0002_changelog_timeline
Revises: platform_0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "platform_0002_changelog_timeline"
down_revision: str | None = "platform_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE VIEW dataset_changelog_timeline AS
        SELECT
            events.id,
            events.event_id,
            events.dataset_id,
            datasets.name AS dataset_name,
            events.organization_id,
            events.occurred_at,
            events.event_category,
            events.event_type,
            events.user_node_id,
            users.email AS user_email,
            events.detail,
            events.recorded_at,
            events.published_at,
            events.trace_id,
            events.job_id
        FROM dataset_changelog_events AS events
        LEFT JOIN datasets ON datasets.id = events.dataset_id
        LEFT JOIN users ON users.id = events.user_id
        """
    )


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS dataset_changelog_timeline")
