"""Refreshing the storage cache tables of organizations, level by level, in the caller's transaction."""

from __future__ import annotations

import enum
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.engine import Engine

from jobs_orchestration.db.base import utcnow
from jobs_orchestration.storage_totals import queries

LOCK_NAMESPACE = 0x5707  # the advisory-lock namespace of storage refreshes ("STO")
UNIQUE_VIOLATION = "23505"  # PostgreSQL SQLSTATE
DEFAULT_BATCH_SIZE = 50
"""Organizations per transaction: a hundred organizations already keep two connections busy, and a
statement's fixed cost is spread over enough rows."""
DEFAULT_PARALLEL_BATCHES = 2
"""Transactions an all-organizations refresh runs at once: the database does the work, on as many
cores as it is given."""
MAX_PARALLEL_BATCHES = 8
WORK_MEMORY = "64MB"
"""PostgreSQL memory for each sort or hash of a refresh, on the database server."""


class Level(enum.StrEnum):
    PACKAGE = "package"
    DATASET = "dataset"
    ORGANIZATION = "organization"


ALL_LEVELS = (Level.PACKAGE, Level.DATASET, Level.ORGANIZATION)


class UnknownOrganization(LookupError):
    def __init__(self, organization_ids: Sequence[int]):
        self.organization_ids = tuple(organization_ids)
        listed = ", ".join(str(i) for i in self.organization_ids)
        super().__init__(f"organization_id {listed}: no such organization; nothing was refreshed")


@dataclass(frozen=True)
class LevelTotals:
    """One cache table's figures for one organization."""

    total_bytes: int
    rows_changed: int
    """Rows inserted, updated or removed (in a dry run: that would be)."""
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class OrganizationTotals:
    organization_id: int
    dry_run: bool
    levels: dict[Level, LevelTotals]

    @property
    def total_bytes(self) -> int:
        return self.levels[Level.ORGANIZATION].total_bytes

    @property
    def rows_changed(self) -> int:
        return sum(level.rows_changed for level in self.levels.values())


@dataclass(frozen=True)
class BatchResult:
    organizations: list[OrganizationTotals]
    duration_seconds: float


def refresh_storage(
    connection: Connection,
    organization_ids: Iterable[int],
    *,
    levels: Iterable[Level] = ALL_LEVELS,
    dry_run: bool = False,
) -> dict[int, OrganizationTotals]:
    """Compute (and unless `dry_run`, write) the requested cache levels of these organizations inside
    the caller's transaction, so readers see each organization's tables before or after, never between.

    A level reads the level below from this refresh when it computes both, else from the cache table
    (the asset graph refreshes the levels one after the other). A dry run computes every level below
    the ones asked for, so its figures are those a real refresh would give; it writes nothing.
    Raises UnknownOrganization, before any work, when an id is not an organization.
    """
    ids = sorted({int(organization_id) for organization_id in organization_ids})
    if not ids:
        return {}
    wanted = set(levels)
    if dry_run:
        wanted |= set(ALL_LEVELS[: max(ALL_LEVELS.index(level) for level in wanted) + 1])
    _lock_known_organizations(connection, ids)
    if connection.dialect.name == "postgresql":
        # Compiling these short statements costs more than it saves.
        connection.execute(sa.text("SET LOCAL jit = off"))
        # A batch's hashes and sorts (parents, sums per package) outgrow the default 4 MB at a few
        # hundred organizations and would spill to disk.
        connection.execute(sa.text("SELECT set_config('work_mem', :memory, true)"), {"memory": WORK_MEMORY})
    parameters = {"organization_ids": ids, "now": utcnow()}
    figures: dict[int, dict[Level, LevelTotals]] = {organization_id: {} for organization_id in ids}
    # Dropped first too: on SQLite a failed refresh may leave them on the pooled connection.
    _drop_temporary_tables(connection)
    if Level.PACKAGE in wanted:
        package_sizes = queries.compute_package_sizes(connection.dialect.name)
        _execute(connection, package_sizes, parameters)
        _write_level(connection, Level.PACKAGE, parameters, figures, dry_run)
    if Level.DATASET in wanted:
        dataset_sizes = queries.compute_dataset_sizes(from_this_refresh=Level.PACKAGE in wanted)
        _execute(connection, dataset_sizes, parameters)
        _write_level(connection, Level.DATASET, parameters, figures, dry_run)
    if Level.ORGANIZATION in wanted:
        source = queries.DATASET_SIZES if Level.DATASET in wanted else "dataset_storage"
        _execute(connection, queries.compute_organization_sizes(source), parameters)
        _write_level(connection, Level.ORGANIZATION, parameters, figures, dry_run)
    _drop_temporary_tables(connection)
    return {
        organization_id: OrganizationTotals(
            organization_id,
            dry_run,
            {level: by_level.get(level, _EMPTY[level]) for level in ALL_LEVELS if level in wanted},
        )
        for organization_id, by_level in figures.items()
    }


@dataclass(frozen=True)
class _LevelStatements:
    figures: str
    """One row per organization: total_bytes, rows_to_insert, rows_to_update and the level's counts."""
    counts: tuple[str, ...]
    insert_new: str
    upsert_new: str
    update_changed: str
    stale_rows: str | None
    """FROM clause of the cache rows filed under the batch's organizations that must go."""


_STATEMENTS = {
    Level.PACKAGE: _LevelStatements(
        queries.PACKAGE_FIGURES,
        ("packages", "packages_with_files", "files"),
        queries.INSERT_NEW_PACKAGE_ROWS,
        queries.UPSERT_NEW_PACKAGE_ROWS,
        queries.UPDATE_CHANGED_PACKAGE_ROWS,
        queries.STALE_PACKAGE_ROWS,
    ),
    Level.DATASET: _LevelStatements(
        queries.DATASET_FIGURES,
        ("datasets", "root_packages"),
        queries.INSERT_NEW_DATASET_ROWS,
        queries.UPSERT_NEW_DATASET_ROWS,
        queries.UPDATE_CHANGED_DATASET_ROWS,
        queries.STALE_DATASET_ROWS,
    ),
    Level.ORGANIZATION: _LevelStatements(
        queries.ORGANIZATION_FIGURES,
        ("datasets", "counted_datasets"),
        queries.INSERT_NEW_ORGANIZATION_ROWS,
        queries.UPSERT_NEW_ORGANIZATION_ROWS,
        queries.UPDATE_CHANGED_ORGANIZATION_ROWS,
        None,
    ),
}


def _write_level(connection: Connection, level: Level, parameters: dict, figures, dry_run: bool) -> None:
    """Record the level's figures per organization and, unless `dry_run`, write what changed. A
    statement with nothing to do is not sent: after the first fill, that is most of them."""
    statements = _STATEMENTS[level]
    stale = _stale_rows(connection, statements.stale_rows, parameters) if statements.stale_rows else {}
    to_insert = to_update = 0
    for row in _rows(connection, statements.figures, parameters):
        to_insert += int(row.rows_to_insert)
        to_update += int(row.rows_to_update)
        changed = int(row.rows_to_insert) + int(row.rows_to_update) + stale.get(row.organization_id, 0)
        figures[row.organization_id][level] = LevelTotals(
            total_bytes=int(row.total_bytes),
            rows_changed=changed,
            counts={name: int(getattr(row, name)) for name in statements.counts},
        )
    for organization_id, removed in stale.items():
        # Nothing of the organization is left at this level, but its old rows still go.
        if level not in figures[organization_id]:
            figures[organization_id][level] = replace(_EMPTY[level], rows_changed=removed)
    if dry_run:
        return
    if to_update:
        _execute(connection, statements.update_changed, parameters)
    if to_insert:
        _insert_new_rows(connection, statements, parameters)
    if stale and statements.stale_rows:
        _execute(connection, "DELETE " + statements.stale_rows, parameters)


def _insert_new_rows(connection: Connection, statements: _LevelStatements, parameters: dict) -> None:
    """A plain INSERT, which conflicts only with a row filed under an organization outside the batch;
    then the savepoint takes the INSERT back and the upsert moves that row. SQLite upserts at once: its
    savepoints through the Python driver are not worth the trouble for a local run."""
    if connection.dialect.name != "postgresql":
        _execute(connection, statements.upsert_new, parameters)
        return
    try:
        with connection.begin_nested():
            _execute(connection, statements.insert_new, parameters)
    except sa.exc.IntegrityError as error:
        sqlstate = getattr(error.orig, "pgcode", None) or getattr(error.orig, "sqlstate", None)
        if sqlstate != UNIQUE_VIOLATION:
            raise
        _execute(connection, statements.upsert_new, parameters)


def refresh_organizations(
    engine: Engine,
    organization_ids: Iterable[int],
    *,
    levels: Iterable[Level] = ALL_LEVELS,
    dry_run: bool = False,
) -> dict[int, OrganizationTotals]:
    """`refresh_storage` in a transaction of its own."""
    with engine.begin() as connection:
        return refresh_storage(connection, organization_ids, levels=levels, dry_run=dry_run)


def refresh_all_organizations(
    engine: Engine,
    *,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    parallel_batches: int = DEFAULT_PARALLEL_BATCHES,
) -> Iterator[BatchResult]:
    """Refresh every organization, `batch_size` per transaction, in id order, `parallel_batches`
    transactions at a time (each on its own connection; their organizations are disjoint, so they
    never wait on each other's locks). Yields each batch's figures in id order; memory holds at most
    `parallel_batches` batches. An organization created meanwhile is picked up if its id comes after
    the batches already taken; one deleted meanwhile is left out of its batch."""
    if batch_size < 1:
        raise ValueError(f"batch_size {batch_size!r}: must be at least 1")
    if not 1 <= parallel_batches <= MAX_PARALLEL_BATCHES:
        raise ValueError(f"parallel_batches {parallel_batches!r}: must be from 1 to {MAX_PARALLEL_BATCHES}")
    if engine.dialect.name != "postgresql":
        parallel_batches = 1  # SQLite, for local runs, has one writer at a time
    after = 0
    in_flight: deque[Future[BatchResult]] = deque()
    with ThreadPoolExecutor(parallel_batches, thread_name_prefix="storage-refresh") as pool:
        try:
            while True:
                with engine.connect() as connection:
                    ids = list(
                        connection.execute(
                            sa.text(queries.NEXT_ORGANIZATIONS), {"after": after, "limit": batch_size}
                        ).scalars()
                    )
                if ids:
                    in_flight.append(pool.submit(_refresh_batch, engine, ids, dry_run))
                    after = ids[-1]
                while in_flight and (len(in_flight) >= parallel_batches or not ids):
                    yield in_flight.popleft().result()
                if not ids:
                    return
        finally:
            for future in in_flight:
                future.cancel()


def organization_names(connection: Connection, organization_ids: Iterable[int]) -> dict[int, str]:
    """Each organization's name, for people reading the figures beside the ids."""
    ids = sorted({int(organization_id) for organization_id in organization_ids})
    if not ids:
        return {}
    rows = _rows(connection, queries.ORGANIZATION_NAMES, {"organization_ids": ids})
    return {row.id: row.name for row in rows}


def _refresh_batch(engine: Engine, organization_ids: list[int], dry_run: bool) -> BatchResult:
    started = time.perf_counter()
    ids = organization_ids
    while True:
        try:
            refreshed = refresh_organizations(engine, ids, dry_run=dry_run)
        except UnknownOrganization as error:  # deleted since the batch was listed: nothing to refresh
            ids = [
                organization_id for organization_id in ids if organization_id not in error.organization_ids
            ]
            continue
        return BatchResult(list(refreshed.values()), time.perf_counter() - started)


# What a level reports for an organization that has nothing at that level.
_EMPTY = {
    Level.PACKAGE: LevelTotals(0, 0, {"packages": 0, "packages_with_files": 0, "files": 0}),
    Level.DATASET: LevelTotals(0, 0, {"datasets": 0, "root_packages": 0}),
    Level.ORGANIZATION: LevelTotals(0, 0, {"datasets": 0, "counted_datasets": 0}),
}


def _lock_known_organizations(connection: Connection, ids: list[int]) -> None:
    if connection.dialect.name == "postgresql":
        statement, parameters = queries.LOCK_ORGANIZATIONS_POSTGRESQL, {"lock_namespace": LOCK_NAMESPACE}
    else:
        statement, parameters = queries.EXISTING_ORGANIZATIONS, {}
    found = {row[0] for row in _rows(connection, statement, {"organization_ids": ids, **parameters})}
    missing = [organization_id for organization_id in ids if organization_id not in found]
    if missing:
        raise UnknownOrganization(missing)


def _stale_rows(connection: Connection, from_clause: str, parameters: dict) -> dict[int, int]:
    statement = f"SELECT organization_id, COUNT(*) {from_clause} GROUP BY organization_id"
    return {row[0]: int(row[1]) for row in _rows(connection, statement, parameters)}


def _text(statement: str) -> sa.TextClause:
    clause = sa.text(statement)
    if ":organization_ids" in statement:
        clause = clause.bindparams(sa.bindparam("organization_ids", expanding=True))
    if ":now" in statement:
        clause = clause.bindparams(sa.bindparam("now", type_=sa.DateTime(timezone=True)))
    return clause


def _execute(connection: Connection, statement: str, parameters: dict, analyze: str | None = None) -> None:
    clause = _text(statement)
    connection.execute(clause, {name: parameters[name] for name in clause.compile().binds})
    if analyze and connection.dialect.name == "postgresql":
        # A temporary table has no statistics; without them the next joins are planned blindly.
        connection.execute(sa.text(f"ANALYZE {analyze}"))


def _rows(connection: Connection, statement: str, parameters: dict):
    clause = _text(statement)
    return connection.execute(clause, {name: parameters[name] for name in clause.compile().binds})


def _drop_temporary_tables(connection: Connection) -> None:
    for table in (
        queries.PACKAGE_SIZES,
        queries.DATASET_SIZES,
        queries.ORGANIZATION_SIZES,
    ):
        connection.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
