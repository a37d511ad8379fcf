"""Builders of platform rows (organizations, datasets, packages, files, time-series data) with their
objects in S3, for the tests of the jobs that read or delete them."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from jobs_orchestration.db import platform

_numbers = itertools.count(1)


@dataclass
class TimeSeriesPackage:
    package_id: int
    channel_ids: list[int]
    range_keys: list[str]
    layer_id: int
    annotation_id: int
    channel_group_id: int


@dataclass
class PlatformData:
    """Inserts rows through the engine and puts objects through the S3 client (over HTTP)."""

    engine: Engine
    s3: Any
    objects: list[tuple[str, str]] = field(default_factory=list)

    def _insert(self, model: Any, **values: Any) -> int:
        with self.engine.begin() as connection:
            return connection.execute(sa.insert(model).values(**values).returning(model.id)).scalar_one()

    def put(self, bucket: str, key: str, body: bytes = b"data") -> None:
        self.s3.put_object(Bucket=bucket, Key=key, Body=body)
        self.objects.append((bucket, key))

    def organization(self) -> int:
        number = next(_numbers)
        return self._insert(
            platform.Organization, node_id=f"N:organization:{number}", name=f"Organization {number}"
        )

    def dataset(
        self, organization_id: int, state: platform.DatasetState = platform.DatasetState.DELETING
    ) -> int:
        number = next(_numbers)
        return self._insert(
            platform.Dataset,
            node_id=f"N:dataset:{number}",
            organization_id=organization_id,
            name=f"Dataset {number}",
            state=state,
        )

    def package(
        self,
        dataset_id: int,
        organization_id: int,
        *,
        parent_id: int | None = None,
        state: platform.PackageState = platform.PackageState.DELETING,
        package_type: platform.PackageType = platform.PackageType.PDF,
        storage_size: int | None = 100,
    ) -> int:
        number = next(_numbers)
        package_id = self._insert(
            platform.Package,
            node_id=f"N:package:{number}",
            organization_id=organization_id,
            dataset_id=dataset_id,
            parent_id=parent_id,
            name=f"Package {number}",
            package_type=package_type,
            state=state,
        )
        if storage_size is not None:
            with self.engine.begin() as connection:
                connection.execute(
                    sa.insert(platform.PackageStorage).values(
                        package_id=package_id,
                        organization_id=organization_id,
                        dataset_id=dataset_id,
                        size=storage_size,
                    )
                )
        return package_id

    def file(
        self,
        package_id: int,
        bucket: str,
        key: str,
        *,
        body: bytes = b"data",
        object_type: platform.FileObjectType = platform.FileObjectType.SOURCE,
        stored: bool = True,
    ) -> int:
        if stored:
            self.put(bucket, key, body)
        return self._insert(
            platform.File,
            package_id=package_id,
            name=key.rsplit("/", 1)[-1],
            s3_bucket=bucket,
            s3_key=key,
            size=len(body),
            object_type=object_type,
        )

    def prefix_file(self, package_id: int, bucket: str, prefix: str, count: int) -> int:
        """A multi-object file: `count` objects under `prefix/`."""
        for index in range(count):
            self.put(bucket, f"{prefix}/part-{index}", b"chunk")
        return self._insert(
            platform.File,
            package_id=package_id,
            name=prefix.rsplit("/", 1)[-1],
            s3_bucket=bucket,
            s3_key=prefix,
            size=5 * count,
            is_prefix=True,
        )

    def asset(self, dataset_id: int, kind: platform.DatasetAssetKind, bucket: str, key: str) -> int:
        self.put(bucket, key)
        return self._insert(
            platform.DatasetAsset,
            dataset_id=dataset_id,
            kind=kind,
            name=kind.value,
            s3_bucket=bucket,
            s3_key=key,
        )

    def timeseries(
        self, dataset_id: int, organization_id: int, bucket: str, *, parent_id: int | None = None
    ) -> TimeSeriesPackage:
        """A time-series package: two channels with two ranges each (objects in `bucket`), a layer with
        an annotation, and a channel group."""
        package_id = self.package(
            dataset_id, organization_id, parent_id=parent_id, package_type=platform.PackageType.TIME_SERIES
        )
        channel_ids, range_keys = [], []
        for channel in range(2):
            number = next(_numbers)
            channel_id = self._insert(
                platform.TimeSeriesChannel,
                package_id=package_id,
                node_id=f"N:channel:{number}",
                name=f"channel {channel}",
                rate=250.0,
            )
            channel_ids.append(channel_id)
            for part in range(2):
                key = f"timeseries/{package_id}/{channel_id}/range-{part}.bin"
                self.put(bucket, key, b"samples")
                range_keys.append(key)
                self._insert(
                    platform.TimeSeriesRange,
                    channel_id=channel_id,
                    location=key,
                    start_time=part,
                    end_time=part + 1,
                )
        layer_id = self._insert(platform.TimeSeriesLayer, package_id=package_id, name="layer")
        annotation_id = self._insert(
            platform.TimeSeriesAnnotation, package_id=package_id, layer_id=layer_id, label="spike"
        )
        group_id = self._insert(
            platform.TimeSeriesChannelGroup, package_id=package_id, name="group", channel_ids=channel_ids
        )
        return TimeSeriesPackage(package_id, channel_ids, range_keys, layer_id, annotation_id, group_id)


def object_exists(s3: Any, bucket: str, key: str) -> bool:
    return s3.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount", 0) > 0 and any(
        entry["Key"] == key for entry in s3.list_objects_v2(Bucket=bucket, Prefix=key)["Contents"]
    )


def keys_in(s3: Any, bucket: str) -> set[str]:
    paginator = s3.get_paginator("list_objects_v2")
    return {entry["Key"] for page in paginator.paginate(Bucket=bucket) for entry in page.get("Contents", [])}


def count_rows(engine: Engine, model: Any, *conditions: Any) -> int:
    with engine.connect() as connection:
        return connection.execute(
            sa.select(sa.func.count()).select_from(model).where(*conditions)
        ).scalar_one()


def package_state(engine: Engine, package_id: int) -> str | None:
    with engine.connect() as connection:
        state = connection.execute(
            sa.select(platform.Package.state).where(platform.Package.id == package_id)
        ).scalar()
    return state.value if state is not None else None
