"""The SQL side of a deletion: reading the rows that locate stored objects (keyset-paginated), removing
them once their objects are gone, and closing packages that have nothing left. All set-based."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy import ColumnElement, Connection
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine
from sqlalchemy.orm import InstrumentedAttribute

from jobs_orchestration.db.platform import (
    Dataset,
    DatasetAsset,
    File,
    Package,
    PackageState,
    PackageStorage,
    TimeSeriesAnnotation,
    TimeSeriesChannel,
    TimeSeriesChannelGroup,
    TimeSeriesLayer,
    TimeSeriesRange,
)
from jobs_orchestration.deletion.scope import PackageScope, iter_package_pages, keyset_pages

ROW_PAGE = 1000
LOCATION_PAGE = 10000
"""File and range rows read per query when walking a page of packages. Each query costs three round
trips (the pool's ping, the query, the rollback) on the walk's one thread, and at 1,000 rows a query
the walk, not S3, set the pace of a large deletion; 10,000 rows are about 3 MB."""

FILES = "files"
RANGES = "timeseries_ranges"
ASSETS = "dataset_assets"


class Owner(NamedTuple):
    """The row that locates an object: removed once the object is gone."""

    table: str
    id: int


class FileRow(NamedTuple):
    id: int
    s3_bucket: str
    s3_key: str
    size: int
    is_prefix: bool
    package_id: int


class RangeRow(NamedTuple):
    id: int
    location: str
    """The object's key in the time-series bucket, or an s3:// URL."""
    package_id: int


@dataclass
class Forgotten:
    files: int = 0
    bytes: int = 0
    ranges: int = 0
    assets: int = 0

    @property
    def rows(self) -> int:
        return self.files + self.ranges + self.assets

    def add(self, other: Forgotten) -> None:
        self.files += other.files
        self.bytes += other.bytes
        self.ranges += other.ranges
        self.assets += other.assets


@dataclass
class Remaining:
    """What is still stored after a deletion: counts and the first rows, named by table, id and key."""

    files: int = 0
    ranges: int = 0
    assets: int = 0
    sample: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.files + self.ranges + self.assets


def iter_file_rows(engine: Engine, package_ids: Sequence[int]) -> Iterator[FileRow]:
    def read_page(connection: Connection, after: int) -> list[FileRow]:
        return [
            FileRow(*row)
            for row in connection.execute(
                sa.select(File.id, File.s3_bucket, File.s3_key, File.size, File.is_prefix, File.package_id)
                .where(File.package_id.in_(package_ids), File.id > after)
                .order_by(File.id)
                .limit(LOCATION_PAGE)
            )
        ]

    for page in keyset_pages(engine, read_page, LOCATION_PAGE, key=lambda row: row.id):
        yield from page


def iter_range_rows(engine: Engine, package_ids: Sequence[int]) -> Iterator[RangeRow]:
    """The time-series ranges of the packages' channels."""

    def read_page(connection: Connection, after: int) -> list[RangeRow]:
        return [
            RangeRow(*row)
            for row in connection.execute(
                sa.select(TimeSeriesRange.id, TimeSeriesRange.location, TimeSeriesChannel.package_id)
                .join(TimeSeriesChannel, TimeSeriesChannel.id == TimeSeriesRange.channel_id)
                .where(TimeSeriesChannel.package_id.in_(package_ids), TimeSeriesRange.id > after)
                .order_by(TimeSeriesRange.id)
                .limit(LOCATION_PAGE)
            )
        ]

    for page in keyset_pages(engine, read_page, LOCATION_PAGE, key=lambda row: row.id):
        yield from page


def asset_rows(engine: Engine, dataset_id: int) -> list[tuple[int, str, str]]:
    """A dataset has a banner and a readme: a handful of rows."""
    with engine.connect() as connection:
        return [
            (row.id, row.s3_bucket, row.s3_key)
            for row in connection.execute(
                sa.select(DatasetAsset.id, DatasetAsset.s3_bucket, DatasetAsset.s3_key).where(
                    DatasetAsset.dataset_id == dataset_id
                )
            )
        ]


def forget(connection: Connection, owners: Sequence[Owner]) -> Forgotten:
    """Remove the rows whose objects are gone; returns how many, and the bytes of the files among them."""
    result = Forgotten()
    by_table: dict[str, list[int]] = {}
    for owner in owners:
        by_table.setdefault(owner.table, []).append(owner.id)
    if file_ids := by_table.get(FILES):
        sizes = connection.execute(
            sa.delete(File).where(_one_of(connection, File.id, file_ids)).returning(File.size)
        ).scalars()
        for size in sizes:
            result.files += 1
            result.bytes += size or 0
    if range_ids := by_table.get(RANGES):
        result.ranges = connection.execute(
            sa.delete(TimeSeriesRange).where(_one_of(connection, TimeSeriesRange.id, range_ids))
        ).rowcount
    if asset_ids := by_table.get(ASSETS):
        result.assets = connection.execute(
            sa.delete(DatasetAsset).where(_one_of(connection, DatasetAsset.id, asset_ids))
        ).rowcount
    return result


def _one_of(
    connection: Connection, column: ColumnElement[int] | InstrumentedAttribute[int], ids: Sequence[int]
) -> ColumnElement[bool]:
    """On PostgreSQL `column = ANY(array)`: one bound array instead of a placeholder per id, which halves
    the client's work for a batch of 1,000 rows. Elsewhere (SQLite, the local stack) `IN (...)`."""
    if connection.dialect.name != "postgresql":
        return column.in_(ids)
    return column == sa.any_(sa.bindparam(None, list(ids), type_=postgresql.ARRAY(sa.Integer)))


def finalize_packages(
    connection: Connection, package_ids: Sequence[int], *, hold: int | Collection[int] | None = None
) -> int:
    """Close the packages among `package_ids` that have no file or range left: remove their other
    time-series rows and storage cache rows and set them DELETED. `hold` (the root of a package
    deletion, or the roots of several) loses those rows too but stays DELETING, so a re-run still finds
    the tree to finish; `close_package` sets it DELETED once nothing is left. Returns how many packages
    became DELETED."""
    return len(finalize_packages_returning(connection, package_ids, hold=hold))


def finalize_packages_returning(
    connection: Connection, package_ids: Sequence[int], *, hold: int | Collection[int] | None = None
) -> list[int]:
    """`finalize_packages`, naming the packages that became DELETED (to credit each to its request)."""
    emptied = _emptied(package_ids).scalar_subquery()
    # Annotations before layers: an annotation points at its layer.
    for table in (
        TimeSeriesAnnotation,
        TimeSeriesLayer,
        TimeSeriesChannelGroup,
        TimeSeriesChannel,
        PackageStorage,
    ):
        connection.execute(sa.delete(table).where(table.package_id.in_(emptied)))
    closing = sa.update(Package).where(Package.id.in_(emptied), Package.state != PackageState.DELETED)
    held = [hold] if isinstance(hold, int) else list(hold or ())
    if held:
        closing = closing.where(Package.id.not_in(held))
    closed = connection.execute(closing.values(state=PackageState.DELETED).returning(Package.id))
    return list(closed.scalars())


def close_package(connection: Connection, package_id: int) -> int:
    """Set the root of a package deletion DELETED once its tree went through `finalize_packages` with
    it held and nothing is left; 1 when it changed."""
    return len(close_packages(connection, [package_id]))


def close_packages(connection: Connection, package_ids: Sequence[int]) -> list[int]:
    """`close_package` for several roots in one statement; returns the ones that changed."""
    closing = sa.update(Package).where(
        Package.id.in_(_emptied(package_ids).scalar_subquery()), Package.state != PackageState.DELETED
    )
    closed = connection.execute(closing.values(state=PackageState.DELETED).returning(Package.id))
    return list(closed.scalars())


def remaining_per_package(connection: Connection, package_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """(files, time-series ranges) still locating stored objects, for each of `package_ids` that has any."""
    left: dict[int, list[int]] = {}
    files = (
        sa.select(File.package_id, sa.func.count())
        .where(File.package_id.in_(package_ids))
        .group_by(File.package_id)
    )
    for package_id, count in connection.execute(files):
        left.setdefault(package_id, [0, 0])[0] = count
    ranges = (
        sa.select(TimeSeriesChannel.package_id, sa.func.count())
        .join(TimeSeriesRange, TimeSeriesRange.channel_id == TimeSeriesChannel.id)
        .where(TimeSeriesChannel.package_id.in_(package_ids))
        .group_by(TimeSeriesChannel.package_id)
    )
    for package_id, count in connection.execute(ranges):
        left.setdefault(package_id, [0, 0])[1] = count
    return {package_id: (counts[0], counts[1]) for package_id, counts in left.items()}


def _emptied(package_ids: Sequence[int]) -> sa.Select[tuple[int]]:
    """The packages among `package_ids` with no file and no time-series range left."""
    has_files = sa.exists().where(File.package_id == Package.id)
    has_ranges = (
        sa.exists()
        .where(TimeSeriesChannel.package_id == Package.id)
        .where(TimeSeriesRange.channel_id == TimeSeriesChannel.id)
    )
    return sa.select(Package.id).where(Package.id.in_(package_ids), ~has_files, ~has_ranges)


def remaining_in_scope(
    engine: Engine, scope: PackageScope, *, dataset_id: int | None = None, sample_size: int = 100
) -> Remaining:
    """Count the rows that still locate stored objects in the scope (and the dataset's assets), naming
    the first `sample_size` of them."""
    remaining = Remaining()

    def note(table: str, row_id: int, location: str) -> None:
        if len(remaining.sample) < sample_size:
            remaining.sample.append(f"{table}/{row_id}: {location}")

    for package_ids in iter_package_pages(engine, scope):
        room = sample_size - len(remaining.sample)
        files = sa.select(File.id, File.s3_bucket, File.s3_key).where(File.package_id.in_(package_ids))
        ranges = (
            sa.select(TimeSeriesRange.id, TimeSeriesRange.location)
            .join(TimeSeriesChannel, TimeSeriesChannel.id == TimeSeriesRange.channel_id)
            .where(TimeSeriesChannel.package_id.in_(package_ids))
        )
        with engine.connect() as connection:
            file_count = connection.execute(
                sa.select(sa.func.count()).select_from(files.subquery())
            ).scalar_one()
            range_count = connection.execute(
                sa.select(sa.func.count()).select_from(ranges.subquery())
            ).scalar_one()
            remaining.files += file_count
            remaining.ranges += range_count
            if room > 0 and file_count:
                for file_id, bucket, key in connection.execute(files.order_by(File.id).limit(room)):
                    note(FILES, file_id, f"s3://{bucket}/{key}")
            if room > 0 and range_count:
                for range_id, location in connection.execute(ranges.order_by(TimeSeriesRange.id).limit(room)):
                    note(RANGES, range_id, location)
    if dataset_id is not None:
        for asset_id, bucket, key in asset_rows(engine, dataset_id):
            remaining.assets += 1
            note(ASSETS, asset_id, f"s3://{bucket}/{key}")
    return remaining


@dataclass
class ForeignPackages:
    """Packages filed under a dataset but belonging to another organization (inconsistent data): its
    deletion never touches them, and they keep the dataset row, whose removal would cascade into them."""

    count: int = 0
    sample: list[tuple[int, int]] = field(default_factory=list)
    """(package id, organization id) of the first few."""

    def describe(self) -> str:
        named = ", ".join(f"package_id {package} (organization_id {owner})" for package, owner in self.sample)
        more = f" and {self.count - len(self.sample)} more" if self.count > len(self.sample) else ""
        return f"{self.count} package(s) of other organizations ({named}{more})"


def foreign_packages(
    connection: Connection, dataset_id: int, organization_id: int, sample_size: int = 10
) -> ForeignPackages:
    foreign = sa.select(Package.id, Package.organization_id).where(
        Package.dataset_id == dataset_id, Package.organization_id != organization_id
    )
    count = connection.execute(sa.select(sa.func.count()).select_from(foreign.subquery())).scalar_one()
    if not count:
        return ForeignPackages()
    sample = connection.execute(foreign.order_by(Package.id).limit(sample_size)).all()
    return ForeignPackages(count, [(row.id, row.organization_id) for row in sample])


def remove_dataset(
    engine: Engine, dataset_id: int, organization_id: int, page_size: int = ROW_PAGE
) -> ForeignPackages:
    """Remove the organization's package tombstones of the dataset a page at a time (short
    transactions), with any storage cache row still naming them (nothing cascades into
    `package_storage`), then the dataset row; the database cascades the rest (dataset storage rows).
    Changelog events stay: they are the dataset's audit trail. While another organization's package
    names the dataset nothing is removed (a removed parent or dataset row would cascade into it), and
    that package is returned; an empty answer means the dataset is gone."""
    with engine.connect() as connection:
        foreign = foreign_packages(connection, dataset_id, organization_id)
    if foreign.count:
        return foreign
    while True:
        with engine.begin() as connection:
            page = (
                sa.select(Package.id)
                .where(Package.dataset_id == dataset_id, Package.organization_id == organization_id)
                .order_by(Package.id)
                .limit(page_size)
            )
            page_ids = list(connection.execute(page).scalars())
            if not page_ids:
                break
            connection.execute(sa.delete(PackageStorage).where(PackageStorage.package_id.in_(page_ids)))
            connection.execute(sa.delete(Package).where(Package.id.in_(page_ids)))
    with engine.begin() as connection:
        # The row lock makes a package filed under the dataset from now on wait for this transaction
        # (its foreign key check), so the check below sees every package the delete could cascade into.
        connection.execute(sa.select(Dataset.id).where(Dataset.id == dataset_id).with_for_update())
        foreign = foreign_packages(connection, dataset_id, organization_id)
        if not foreign.count:
            connection.execute(sa.delete(Dataset).where(Dataset.id == dataset_id))
    return foreign
