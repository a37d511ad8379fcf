"""Keyset pagination of the rows a deletion walks: every row once, and no query past a short page."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from jobs_orchestration.deletion.scope import keyset_pages

SERIES = sa.text("SELECT g FROM generate_series(1, :count) AS g WHERE g > :after ORDER BY g LIMIT :limit")


@pytest.mark.parametrize(
    ("count", "page_size", "pages", "reads"),
    [
        (0, 2, [], 1),
        (1, 500, [[1]], 1),
        (5, 2, [[1, 2], [3, 4], [5]], 3),
        (4, 2, [[1, 2], [3, 4]], 3),
    ],
)
def test_pages_cover_every_row_and_stop_at_a_short_page(platform_db, count, page_size, pages, reads):
    reads_after = []

    def read_page(connection, after):
        reads_after.append(after)
        parameters = {"count": count, "after": after, "limit": page_size}
        return list(connection.execute(SERIES, parameters).scalars())

    got = [list(page) for page in keyset_pages(platform_db.engine, read_page, page_size, key=lambda g: g)]

    assert got == pages
    assert len(reads_after) == reads
