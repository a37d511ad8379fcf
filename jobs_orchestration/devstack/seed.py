"""Demo and benchmark data: organizations with nested package trees whose files really exist in S3,
time-series packages, and Email Parser snapshots old and new, some attached to orders.

Rows are bulk-loaded (COPY on PostgreSQL), so a million files seed in seconds; objects are written
through a pluggable writer: over HTTP for the demo, straight into moto's backend for benchmarks, or
not at all for database-only benchmarks.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from jobs_orchestration.db.bulk import bulk_insert
from jobs_orchestration.db.email_parser import (
    Order,
    OrderAttachment,
    ParseSession,
    SnapshotFile,
    SnapshotType,
)
from jobs_orchestration.db.platform import (
    Dataset,
    DatasetAsset,
    DatasetAssetKind,
    DatasetState,
    File,
    FileObjectType,
    Organization,
    Package,
    PackageState,
    PackageType,
    TimeSeriesAnnotation,
    TimeSeriesChannel,
    TimeSeriesChannelGroup,
    TimeSeriesLayer,
    TimeSeriesRange,
    User,
)
from jobs_orchestration.devstack.aws import DATASET_ASSETS_BUCKET, DATASET_BUCKET, TIMESERIES_BUCKET
from jobs_orchestration.snapshots.store import SnapshotStore

ObjectWriter = Callable[[str, str, bytes], None]
"""Writes one object: (bucket, key, body)."""

LEAF_TYPES = [PackageType.PDF, PackageType.CSV, PackageType.IMAGE, PackageType.TEXT, PackageType.TABULAR]
PREFIX_OBJECTS = 3
"""Objects under the key prefix of a multi-object file."""


@dataclass(frozen=True)
class SeedSizes:
    organizations: int = 3
    users: int = 4
    datasets_per_organization: int = 2
    packages_per_dataset: int = 12
    files_per_package: int = 2
    depth: int = 3
    timeseries_per_dataset: int = 1
    snapshots: int = 40
    seed: int = 7


@dataclass
class SeedSummary:
    rows: dict[str, int] = field(default_factory=dict)
    objects: int = 0
    bytes: int = 0
    organization_ids: list[int] = field(default_factory=list)
    user_node_ids: list[str] = field(default_factory=list)
    """What this seeding added, for whoever picks targets among it (the demo)."""

    def add(self, table: str, count: int) -> None:
        self.rows[table] = self.rows.get(table, 0) + count


def discard_objects(bucket: str, key: str, body: bytes) -> None:
    """An ObjectWriter for database-only runs."""


@contextmanager
def http_object_writer(s3_client: Any, workers: int = 16) -> Iterator[ObjectWriter]:
    """Writes objects through PutObject calls on a thread pool; waits for all of them on exit."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = []

        def write(bucket: str, key: str, body: bytes) -> None:
            futures.append(pool.submit(s3_client.put_object, Bucket=bucket, Key=key, Body=body))

        yield write
        for future in futures:
            future.result()


def moto_backend_object_writer(account_id: str = "123456789012") -> ObjectWriter:
    """Writes objects straight into the moto server running in this process (visible over HTTP at
    once): two orders of magnitude faster than PutObject calls, for seeding benchmarks."""
    from moto.s3.models import s3_backends

    backend = s3_backends[account_id]["global"]

    def write(bucket: str, key: str, body: bytes) -> None:
        backend.put_object(bucket, key, body)

    return write


class _Ids:
    """Next free id per table, so seeding adds to whatever is there already."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.next: dict[str, int] = {}

    def take(self, model: Any) -> int:
        table = model.__table__
        if table.name not in self.next:
            current = self.connection.execute(sa.select(sa.func.max(table.c.id))).scalar() or 0
            self.next[table.name] = current + 1
        value = self.next[table.name]
        self.next[table.name] = value + 1
        return value


def seed_platform(
    connection: Connection,
    sizes: SeedSizes = SeedSizes(),
    write_object: ObjectWriter = discard_objects,
    *,
    now: dt.datetime | None = None,
) -> SeedSummary:
    """Organizations, users, datasets with assets, package trees with files, time-series packages."""
    now = now or dt.datetime.now(dt.UTC)
    rng = random.Random(sizes.seed)
    # Object bodies draw from their own generator, so the rows are the same whether or not objects
    # are written (the demo's targets depend on the trees).
    body_rng = random.Random(sizes.seed + 2)
    ids = _Ids(connection)
    summary = SeedSummary()
    writing = write_object is not discard_objects
    rows: dict[Any, list[tuple]] = {model: [] for model in PLATFORM_COLUMNS}
    tag = uuid.UUID(int=rng.getrandbits(128)).hex[:8]

    def body_of(size: int) -> bytes:
        return body_rng.randbytes(size) if writing else b""

    def put(bucket: str, key: str, size: int) -> None:
        if writing:
            write_object(bucket, key, body_of(size))
        summary.objects += 1
        summary.bytes += size

    for _ in range(sizes.users):
        user_id = ids.take(User)
        node_id = f"N:user:{tag}-{user_id}"
        rows[User].append((user_id, node_id, f"user{user_id}@example.org", "Demo", f"User {user_id}", now))
        summary.user_node_ids.append(node_id)

    for _ in range(sizes.organizations):
        organization_id = ids.take(Organization)
        summary.organization_ids.append(organization_id)
        rows[Organization].append(
            (
                organization_id,
                f"N:organization:{tag}-{organization_id}",
                f"Organization {organization_id}",
                now,
            )
        )
        for _ in range(sizes.datasets_per_organization):
            dataset_id = ids.take(Dataset)
            rows[Dataset].append(
                (
                    dataset_id,
                    f"N:dataset:{tag}-{dataset_id}",
                    organization_id,
                    f"Dataset {dataset_id}",
                    DatasetState.READY,
                    now,
                    now,
                )
            )
            for kind in DatasetAssetKind:
                key = f"{organization_id}/{dataset_id}/{kind.value}"
                rows[DatasetAsset].append(
                    (ids.take(DatasetAsset), dataset_id, kind, kind.value, DATASET_ASSETS_BUCKET, key, now)
                )
                put(DATASET_ASSETS_BUCKET, key, 64)
            _seed_tree(rows, ids, rng, sizes, organization_id, dataset_id, tag, now, put)
            for _ in range(sizes.timeseries_per_dataset):
                _seed_timeseries(rows, ids, organization_id, dataset_id, tag, now, put)

    for model, columns in PLATFORM_COLUMNS.items():
        if rows[model]:
            summary.add(model.__tablename__, bulk_insert(connection, model.__table__, columns, rows[model]))
    _advance_sequences(connection, list(PLATFORM_COLUMNS))
    return summary


def _seed_tree(rows, ids, rng, sizes, organization_id, dataset_id, tag, now, put) -> None:
    collections: list[tuple[int, int]] = []  # (package id, depth)
    for _ in range(sizes.packages_per_dataset):
        parents = [(package_id, depth) for package_id, depth in collections if depth < sizes.depth - 1]
        parent_id, depth = rng.choice(parents) if parents and rng.random() < 0.8 else (None, -1)
        package_id = ids.take(Package)
        is_collection = depth + 1 < sizes.depth - 1 and rng.random() < 0.3
        package_type = PackageType.COLLECTION if is_collection else rng.choice(LEAF_TYPES)
        rows[Package].append(
            (
                package_id,
                f"N:package:{tag}-{package_id}",
                organization_id,
                dataset_id,
                parent_id,
                f"package-{package_id}",
                package_type,
                PackageState.READY,
                now,
                now,
            )
        )
        if is_collection:
            collections.append((package_id, depth + 1))
            continue
        for index in range(sizes.files_per_package):
            file_id = ids.take(File)
            object_type = FileObjectType.SOURCE if index == 0 else FileObjectType.VIEW
            key = f"{organization_id}/{dataset_id}/{package_id}/{file_id}"
            size = rng.randint(100, 2000)
            is_prefix = index == 0 and package_id % 10 == 0
            if is_prefix:
                for part in range(PREFIX_OBJECTS):
                    put(DATASET_BUCKET, f"{key}/part-{part}", size)
                size *= PREFIX_OBJECTS
            else:
                put(DATASET_BUCKET, key, size)
            rows[File].append(
                (
                    file_id,
                    package_id,
                    f"file-{file_id}",
                    DATASET_BUCKET,
                    key,
                    size,
                    object_type,
                    is_prefix,
                    now,
                )
            )


def _seed_timeseries(rows, ids, organization_id, dataset_id, tag, now, put) -> None:
    package_id = ids.take(Package)
    rows[Package].append(
        (
            package_id,
            f"N:package:{tag}-{package_id}",
            organization_id,
            dataset_id,
            None,
            f"recording-{package_id}",
            PackageType.TIME_SERIES,
            PackageState.READY,
            now,
            now,
        )
    )
    source_id = ids.take(File)
    source_key = f"{organization_id}/{dataset_id}/{package_id}/{source_id}.edf"
    put(DATASET_BUCKET, source_key, 512)
    rows[File].append(
        (
            source_id,
            package_id,
            "recording.edf",
            DATASET_BUCKET,
            source_key,
            512,
            FileObjectType.SOURCE,
            False,
            now,
        )
    )
    channel_ids = []
    for channel_index in range(2):
        channel_id = ids.take(TimeSeriesChannel)
        channel_ids.append(channel_id)
        rows[TimeSeriesChannel].append(
            (channel_id, package_id, f"N:channel:{tag}-{channel_id}", f"channel-{channel_index}", 250.0)
        )
        for range_index in range(2):
            range_id = ids.take(TimeSeriesRange)
            location = f"{organization_id}/{package_id}/{channel_id}/{range_id}.bin"
            put(TIMESERIES_BUCKET, location, 256)
            rows[TimeSeriesRange].append(
                (range_id, channel_id, location, range_index * 1000, range_index * 1000 + 999)
            )
    layer_id = ids.take(TimeSeriesLayer)
    rows[TimeSeriesLayer].append((layer_id, package_id, "Default"))
    rows[TimeSeriesAnnotation].append(
        (ids.take(TimeSeriesAnnotation), package_id, layer_id, "seizure", 100, 200)
    )
    rows[TimeSeriesChannelGroup].append(
        (ids.take(TimeSeriesChannelGroup), package_id, "All channels", channel_ids)
    )


PLATFORM_COLUMNS: dict[Any, list[str]] = {
    # Column order of the seeder's rows, shared with other bulk loaders of the same tables.
    User: ["id", "node_id", "email", "first_name", "last_name", "created_at"],
    Organization: ["id", "node_id", "name", "created_at"],
    Dataset: ["id", "node_id", "organization_id", "name", "state", "created_at", "updated_at"],
    DatasetAsset: ["id", "dataset_id", "kind", "name", "s3_bucket", "s3_key", "created_at"],
    Package: [
        "id",
        "node_id",
        "organization_id",
        "dataset_id",
        "parent_id",
        "name",
        "package_type",
        "state",
        "created_at",
        "updated_at",
    ],
    File: [
        "id",
        "package_id",
        "name",
        "s3_bucket",
        "s3_key",
        "size",
        "object_type",
        "is_prefix",
        "created_at",
    ],
    TimeSeriesChannel: ["id", "package_id", "node_id", "name", "rate"],
    TimeSeriesRange: ["id", "channel_id", "location", "start_time", "end_time"],
    TimeSeriesLayer: ["id", "package_id", "name"],
    TimeSeriesAnnotation: ["id", "package_id", "layer_id", "label", "start_time", "end_time"],
    TimeSeriesChannelGroup: ["id", "package_id", "name", "channel_ids"],
}


def seed_email_parser(
    connection: Connection,
    store: SnapshotStore,
    sizes: SeedSizes = SeedSizes(),
    *,
    now: dt.datetime | None = None,
    write_files: bool = True,
) -> SeedSummary:
    """Parse sessions with a snapshot each, created over the last 14 days; orders with their own
    snapshots; order attachments referencing every order's snapshot and some old session snapshots."""
    now = now or dt.datetime.now(dt.UTC)
    rng = random.Random(sizes.seed + 1)
    ids = _Ids(connection)
    summary = SeedSummary()
    sessions, orders, attachments, snapshots = [], [], [], []
    for _ in range(max(1, sizes.snapshots // 4)):
        new_order_id = ids.take(Order)
        orders.append((new_order_id, f"ORDER-{new_order_id}", now))
    for index in range(sizes.snapshots):
        order_id: int | None
        created_at = now - dt.timedelta(days=rng.uniform(0, 14))
        if index % 5 == 4:
            order_id = rng.choice(orders)[0]
            snapshot_type, session_id = SnapshotType.ORDER_ATTACHMENT, None
        else:
            session_id = ids.take(ParseSession)
            sessions.append((session_id, f"Purchase order {session_id}", created_at))
            snapshot_type, order_id = SnapshotType.PARSE_SESSION, None
        file_id = str(uuid.UUID(int=rng.getrandbits(128)))
        key = f"{created_at:%Y/%m/%d}/{file_id}.pdf"
        body = b"%PDF-1.7 demo snapshot " + file_id.encode()
        if write_files:
            store.put(key, body)
        summary.objects += 1
        summary.bytes += len(body)
        snapshots.append(
            (
                ids.take(SnapshotFile),
                file_id,
                snapshot_type,
                session_id,
                order_id,
                key,
                len(body),
                "application/pdf",
                created_at,
            )
        )
        # Orders keep their own snapshots, and about a third of the session snapshots too.
        if snapshot_type is SnapshotType.ORDER_ATTACHMENT or rng.random() < 0.3:
            attachments.append((ids.take(OrderAttachment), order_id or rng.choice(orders)[0], file_id, now))

    for model, columns, data in (
        (ParseSession, ["id", "subject", "created_at"], sessions),
        (Order, ["id", "reference", "created_at"], orders),
        (
            SnapshotFile,
            [
                "id",
                "file_id",
                "snapshot_type",
                "parse_session_id",
                "order_id",
                "storage_key",
                "size_bytes",
                "content_type",
                "created_at",
            ],
            snapshots,
        ),
        (OrderAttachment, ["id", "order_id", "file_id", "created_at"], attachments),
    ):
        if data:
            summary.add(model.__tablename__, bulk_insert(connection, model.__table__, columns, data))
    _advance_sequences(connection, [ParseSession, Order, SnapshotFile, OrderAttachment])
    return summary


def _advance_sequences(connection: Connection, models: list[Any]) -> None:
    """Explicit ids bypass PostgreSQL's sequences; move them past the seeded rows."""
    if connection.dialect.name != "postgresql":
        return
    for model in models:
        table = model.__tablename__
        connection.execute(
            sa.text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f'GREATEST((SELECT COALESCE(MAX(id), 0) FROM "{table}"), 1))'
            )
        )
