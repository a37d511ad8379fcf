"""A dataset's changelog in time order, one page at a time (keyset paging, bounded memory).

Reads the `dataset_changelog_timeline` view (migration platform_0002), ordered by (occurred_at, id),
which the index ix_dataset_changelog_events_timeline serves. A cursor is an event's row id: `after`
gives the events that come after it in time order, `before` those that come before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

timeline_view = sa.table(
    "dataset_changelog_timeline",
    sa.column("id", sa.BigInteger),
    sa.column("event_id", sa.String),
    sa.column("dataset_id", sa.Integer),
    sa.column("dataset_name", sa.String),
    sa.column("organization_id", sa.Integer),
    sa.column("occurred_at", sa.DateTime(timezone=True)),
    sa.column("event_category", sa.String),
    sa.column("event_type", sa.String),
    sa.column("user_node_id", sa.String),
    sa.column("user_email", sa.String),
    sa.column("detail", sa.JSON),
    sa.column("published_at", sa.DateTime(timezone=True)),
)
"""The view, for queries only: it is deliberately not part of the models' metadata."""


class UnknownCursor(ValueError):
    pass


@dataclass(frozen=True)
class TimelinePage:
    events: list[Any]
    has_more_before: bool
    has_more_after: bool


def read_timeline(
    connection: Connection,
    dataset_id: int,
    *,
    limit: int = 50,
    after: int | None = None,
    before: int | None = None,
) -> TimelinePage:
    """Up to `limit` events of the dataset in time order: the first ones, or those after/before a cursor."""
    if after is not None and before is not None:
        raise ValueError("give either after or before, not both")
    view = timeline_view
    position = sa.tuple_(view.c.occurred_at, view.c.id)
    statement = sa.select(view).where(view.c.dataset_id == dataset_id)
    cursor = after if after is not None else before
    if cursor is not None:
        anchor = connection.execute(
            sa.select(view.c.occurred_at, view.c.id).where(
                view.c.id == cursor, view.c.dataset_id == dataset_id
            )
        ).first()
        if anchor is None:
            raise UnknownCursor(f"cursor {cursor} is not an event of dataset {dataset_id}")
        anchor_position = sa.tuple_(sa.literal(anchor.occurred_at), sa.literal(anchor.id))
        statement = statement.where(
            position > anchor_position if after is not None else position < anchor_position
        )
    backwards = before is not None
    order = (view.c.occurred_at.desc(), view.c.id.desc()) if backwards else (view.c.occurred_at, view.c.id)
    rows = list(connection.execute(statement.order_by(*order).limit(limit + 1)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()
        return TimelinePage(rows, has_more_before=more, has_more_after=True)
    return TimelinePage(rows, has_more_before=cursor is not None, has_more_after=more)
