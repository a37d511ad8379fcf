"""Builders of organizations, datasets, package trees and files in the platform database."""

from __future__ import annotations

import itertools

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from jobs_orchestration.db import platform

_ids = itertools.count(1)


class PlatformTree:
    """Adds rows one statement each: for tests' small trees, not for bulk data (see db.bulk)."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def _insert(self, table: sa.Table, **values) -> int:
        with self.engine.begin() as connection:
            connection.execute(table.insert().values(**values))
        return values["id"]

    def organization(self, organization_id: int | None = None) -> int:
        identifier = organization_id or next(_ids)
        return self._insert(
            platform.Organization.__table__,
            id=identifier,
            node_id=f"N:organization:{identifier}",
            name=f"org {identifier}",
        )

    def dataset(
        self, organization_id: int, state: platform.DatasetState = platform.DatasetState.READY
    ) -> int:
        identifier = next(_ids)
        return self._insert(
            platform.Dataset.__table__,
            id=identifier,
            node_id=f"N:dataset:{identifier}",
            organization_id=organization_id,
            name=f"dataset {identifier}",
            state=state,
        )

    def package(
        self,
        dataset_id: int,
        *,
        parent_id: int | None = None,
        state: platform.PackageState = platform.PackageState.READY,
        collection: bool = False,
        files: tuple[int, ...] = (),
        view_files: tuple[int, ...] = (),
    ) -> int:
        identifier = next(_ids)
        with self.engine.begin() as connection:
            organization_id = connection.execute(
                sa.select(platform.Dataset.organization_id).where(platform.Dataset.id == dataset_id)
            ).scalar_one()
            connection.execute(
                platform.Package.__table__.insert().values(
                    id=identifier,
                    node_id=f"N:package:{identifier}",
                    organization_id=organization_id,
                    dataset_id=dataset_id,
                    parent_id=parent_id,
                    name=f"package {identifier}",
                    package_type=platform.PackageType.COLLECTION if collection else platform.PackageType.PDF,
                    state=state,
                )
            )
        for size in files:
            self.file(identifier, size)
        for size in view_files:
            self.file(identifier, size, platform.FileObjectType.VIEW)
        return identifier

    def collection(self, dataset_id: int, **kwargs) -> int:
        return self.package(dataset_id, collection=True, **kwargs)

    def file(
        self,
        package_id: int,
        size: int,
        object_type: platform.FileObjectType = platform.FileObjectType.SOURCE,
    ) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                platform.File.__table__.insert().values(
                    package_id=package_id,
                    name=f"file of {package_id}",
                    s3_bucket="platform-datasets",
                    s3_key=f"{package_id}/{next(_ids)}",
                    size=size,
                    object_type=object_type,
                )
            )

    def set_state(self, package_id: int, state: platform.PackageState) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                sa.update(platform.Package.__table__)
                .where(platform.Package.__table__.c.id == package_id)
                .values(state=state)
            )


def cached_sizes(engine: Engine) -> dict[str, dict[int, int]]:
    """Every row of the three cache tables: {"package": {id: size}, "dataset": ..., "organization": ...}."""
    with engine.connect() as connection:
        return {
            "package": dict(
                connection.execute(sa.text("SELECT package_id, size FROM package_storage")).all()
            ),
            "dataset": dict(
                connection.execute(sa.text("SELECT dataset_id, size FROM dataset_storage")).all()
            ),
            "organization": dict(
                connection.execute(sa.text("SELECT organization_id, size FROM organization_storage")).all()
            ),
        }
