"""Which packages a deletion covers, read a page of ids at a time (keyset pagination by package id), so
memory never holds all the ids of a large dataset or folder."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.engine import Engine

from jobs_orchestration.db.platform import Package

PACKAGE_PAGE = 2000
"""Packages per page: each page costs the walk a dozen round trips (its ids, its rows, closing it), so
fewer, larger pages keep a large deletion's walk ahead of its DeleteObjects calls."""

RowT = TypeVar("RowT")

# Every descendant at any depth, whatever its state: the original skipped descendants already in
# DELETING and so left their data behind. UNION (not UNION ALL) drops rows already produced, which
# stops the recursion on a parent_id cycle. Descendants must share the organization, so a corrupt
# parent link can never reach another organization's data.
_TREE_PAGE = sa.text(
    """
    WITH RECURSIVE tree(id) AS (
        SELECT id FROM packages WHERE id = :root_id AND organization_id = :organization_id
        UNION
        SELECT child.id FROM packages AS child JOIN tree ON child.parent_id = tree.id
        WHERE child.organization_id = :organization_id
    )
    SELECT id FROM tree WHERE id > :after ORDER BY id LIMIT :limit
    """
)


# The roots of a run's package deletions and their rows: `{roots}` is a VALUES list of (package id,
# organization id) pairs (see `_with_roots`), which PostgreSQL and SQLite both read, where an array
# parameter would be PostgreSQL's alone. A root counts only in its own organization.
_ROOT_PACKAGES = """
    root(id, organization_id) AS ({roots}),
    root_package AS (
        SELECT package.id, package.organization_id, package.parent_id
        FROM packages AS package
        JOIN root ON package.id = root.id AND package.organization_id = root.organization_id
    )
"""

# The trees of several roots walked at once, each package labelled with the root it was reached from:
# the packages of one run's package deletions read in the same pages. The roots must not lie in one
# another's trees (see `nested_roots`), so a package is reached from one root only.
_FOREST_PAGE = f"""
    WITH RECURSIVE {_ROOT_PACKAGES},
    tree(id, organization_id, root_id) AS (
        SELECT id, organization_id, id FROM root_package
        UNION
        SELECT child.id, child.organization_id, tree.root_id
        FROM packages AS child JOIN tree ON child.parent_id = tree.id
        WHERE child.organization_id = tree.organization_id
    )
    SELECT id, root_id FROM tree WHERE id > :after ORDER BY id LIMIT :limit
"""

# Which roots have another of the roots above them: walks up each root's parents while they share its
# organization (the way down `_TREE_PAGE` takes). UNION stops the walk on a parent_id cycle.
_NESTED_ROOTS = f"""
    WITH RECURSIVE {_ROOT_PACKAGES},
    up(root_id, organization_id, ancestor_id) AS (
        SELECT id, organization_id, parent_id FROM root_package WHERE parent_id IS NOT NULL
        UNION
        SELECT up.root_id, up.organization_id, parent.parent_id
        FROM up JOIN packages AS parent
            ON parent.id = up.ancestor_id AND parent.organization_id = up.organization_id
        WHERE parent.parent_id IS NOT NULL
    )
    SELECT DISTINCT up.root_id
    FROM up JOIN packages AS ancestor
        ON ancestor.id = up.ancestor_id AND ancestor.organization_id = up.organization_id
    WHERE up.ancestor_id <> up.root_id AND up.ancestor_id IN (SELECT id FROM root)
"""


class PackageScope(Protocol):
    def page(self, connection: Connection, after: int, limit: int) -> list[int]:
        """Up to `limit` package ids greater than `after`, in increasing order."""


@dataclass(frozen=True)
class PackageTree:
    """A package and all its descendants. Each page re-walks the tree in SQL: cheap for a folder, and
    it keeps Python's memory to one page whatever the tree's size."""

    root_id: int
    organization_id: int

    def page(self, connection: Connection, after: int, limit: int) -> list[int]:
        parameters = {
            "root_id": self.root_id,
            "organization_id": self.organization_id,
            "after": after,
            "limit": limit,
        }
        return list(connection.execute(_TREE_PAGE, parameters).scalars())


@dataclass(frozen=True)
class DatasetPackages:
    """Every package of a dataset that belongs to the dataset's organization (served by the
    (dataset_id, id) index). A package row naming the dataset but another organization is not the
    requester's to delete, whatever its dataset says."""

    dataset_id: int
    organization_id: int

    def page(self, connection: Connection, after: int, limit: int) -> list[int]:
        return list(
            connection.execute(
                sa.select(Package.id)
                .where(
                    Package.dataset_id == self.dataset_id,
                    Package.organization_id == self.organization_id,
                    Package.id > after,
                )
                .order_by(Package.id)
                .limit(limit)
            ).scalars()
        )


def iter_package_pages(
    engine: Engine, scope: PackageScope, page_size: int = PACKAGE_PAGE
) -> Iterator[Sequence[int]]:
    """The scope's package ids a page at a time, each page read in its own short transaction."""
    return keyset_pages(
        engine,
        lambda connection, after: scope.page(connection, after, page_size),
        page_size,
        key=lambda package_id: package_id,
    )


def keyset_pages(
    engine: Engine,
    read_page: Callable[[Connection, int], Sequence[RowT]],
    page_size: int,
    key: Callable[[RowT], int],
) -> Iterator[Sequence[RowT]]:
    """Pages of rows with increasing ids: `read_page(connection, after)` reads up to `page_size` rows
    past the id `after`, each page in its own short transaction. A short page is the last one, which
    saves a query per scope (most deletions are of a single package)."""
    after = 0
    while True:
        with engine.connect() as connection:
            page = read_page(connection, after)
        if page:
            yield page
        if len(page) < page_size:
            return
        after = key(page[-1])


def _with_roots(query: str, roots: Sequence[tuple[int, int]]) -> tuple[sa.TextClause, dict[str, int]]:
    """The query with its `{roots}` VALUES list written out, one pair of bound parameters a root."""
    values = ", ".join(f"(:root_{index}, :organization_{index})" for index in range(len(roots)))
    parameters: dict[str, int] = {}
    for index, (root_id, organization_id) in enumerate(roots):
        parameters[f"root_{index}"] = root_id
        parameters[f"organization_{index}"] = organization_id
    return sa.text(query.format(roots=f"VALUES {values}")), parameters


def nested_roots(connection: Connection, roots: Sequence[tuple[int, int]]) -> set[int]:
    """The roots among (package id, organization id) pairs that lie inside the tree of another of them."""
    if len(roots) < 2:
        return set()
    statement, parameters = _with_roots(_NESTED_ROOTS, roots)
    return set(connection.execute(statement, parameters).scalars())


def iter_forest_pages(
    engine: Engine, roots: Sequence[tuple[int, int]], page_size: int = PACKAGE_PAGE
) -> Iterator[dict[int, int]]:
    """The packages of several trees (roots given as (package id, organization id), none inside
    another's tree) a page at a time: each page maps package id to the root whose tree holds it."""
    statement, parameters = _with_roots(_FOREST_PAGE, roots)

    def read_page(connection: Connection, after: int) -> list[tuple[int, int]]:
        rows = connection.execute(statement, {**parameters, "after": after, "limit": page_size})
        return [(row.id, row.root_id) for row in rows]

    for page in keyset_pages(engine, read_page, page_size, key=lambda row: row[0]):
        yield dict(page)
