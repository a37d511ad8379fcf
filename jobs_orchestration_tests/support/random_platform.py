"""Random organizations with package trees, loaded in bulk, and an independent brute-force computation
of their storage totals in Python (top-down recursion over the trees, sharing no code with the SQL)."""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from jobs_orchestration.db.bulk import bulk_insert
from jobs_orchestration.db.platform import Dataset, File, Organization, Package
from jobs_orchestration.devstack.seed import PLATFORM_COLUMNS

PACKAGE_STATES = [
    "READY",
    "UPLOADED",
    "PROCESSING",
    "PROCESSING_FAILED",
    "UNAVAILABLE",
    "DELETING",
    "DELETED",
    "RESTORING",
]


@dataclass
class RandomPlatform:
    organizations: list[int] = field(default_factory=list)
    datasets: dict[int, tuple[int, str]] = field(default_factory=dict)  # id -> (organization, state)
    packages: dict[int, tuple[int, int | None, str]] = field(
        default_factory=dict
    )  # id -> (dataset, parent, state)
    files: list[tuple[int, int, str]] = field(default_factory=list)  # (package, size, object type)

    def expected(self) -> dict[str, dict[int, int]]:
        own: dict[int, int] = defaultdict(int)
        for package_id, size, object_type in self.files:
            if object_type == "source" and self.packages[package_id][2] not in (
                "UNAVAILABLE",
                "DELETING",
                "DELETED",
                "RESTORING",
            ):
                own[package_id] += size
        children: dict[int, list[int]] = defaultdict(list)
        for package_id, (_, parent_id, _) in self.packages.items():
            if parent_id is not None:
                children[parent_id].append(package_id)

        def size(package_id: int) -> int:
            if self.packages[package_id][2] in ("DELETING", "DELETED", "RESTORING"):
                return 0
            return own[package_id] + sum(size(child) for child in children[package_id])

        # Packages of size 0 have no cache row.
        packages = {p: size(p) for p in self.packages if size(p) > 0}
        datasets = {d: 0 for d in self.datasets}
        for package_id, (dataset_id, parent_id, _) in self.packages.items():
            if parent_id is None:
                datasets[dataset_id] += size(package_id)
        organizations = {o: 0 for o in self.organizations}
        for dataset_id, (organization_id, state) in self.datasets.items():
            if state != "DELETING":
                organizations[organization_id] += datasets[dataset_id]
        return {"package": packages, "dataset": datasets, "organization": organizations}


def generate(
    rng: random.Random,
    *,
    organizations: int,
    datasets_per_organization: tuple[int, int] = (0, 3),
    packages_per_dataset: tuple[int, int] = (0, 12),
    max_depth: int = 5,
    files_per_package: tuple[int, int] = (0, 4),
    first_id: int = 1,
) -> RandomPlatform:
    platform = RandomPlatform()
    next_id = first_id
    for _ in range(organizations):
        organization_id, next_id = next_id, next_id + 1
        platform.organizations.append(organization_id)
        for _ in range(rng.randint(*datasets_per_organization)):
            dataset_id, next_id = next_id, next_id + 1
            platform.datasets[dataset_id] = (organization_id, rng.choice(["READY", "READY", "DELETING"]))
            depth: dict[int, int] = {}
            collections: list[int] = []
            for _ in range(rng.randint(*packages_per_dataset)):
                package_id, next_id = next_id, next_id + 1
                parent = rng.choice([None, *collections]) if collections else None
                state = rng.choice(PACKAGE_STATES) if rng.random() < 0.4 else "READY"
                platform.packages[package_id] = (dataset_id, parent, state)
                depth[package_id] = 1 if parent is None else depth[parent] + 1
                if depth[package_id] < max_depth and rng.random() < 0.4:
                    collections.append(package_id)
                for _ in range(rng.randint(*files_per_package)):
                    object_type = "source" if rng.random() < 0.8 else "view"
                    platform.files.append((package_id, rng.randint(0, 10_000), object_type))
    return platform


CREATED = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def load(engine: Engine, platform: RandomPlatform) -> None:
    organization_of = {d: o for d, (o, _) in platform.datasets.items()}
    with engine.begin() as connection:
        bulk_insert(
            connection,
            Organization.__table__,
            ["id", "node_id", "name", "created_at"],
            ((o, f"N:organization:{o}", f"org {o}", CREATED) for o in platform.organizations),
        )
        bulk_insert(
            connection,
            Dataset.__table__,
            ["id", "node_id", "organization_id", "name", "state", "created_at", "updated_at"],
            (
                (d, f"N:dataset:{d}", o, f"dataset {d}", s, CREATED, CREATED)
                for d, (o, s) in platform.datasets.items()
            ),
        )
        bulk_insert(
            connection,
            Package.__table__,
            PLATFORM_COLUMNS[Package],
            (
                (p, f"N:package:{p}", organization_of[d], d, parent, f"p{p}", "PDF", s, CREATED, CREATED)
                for p, (d, parent, s) in platform.packages.items()
            ),
        )
        bulk_insert(
            connection,
            File.__table__,
            ["package_id", "name", "s3_bucket", "s3_key", "size", "object_type", "is_prefix", "created_at"],
            (
                (p, "f", "platform-datasets", f"{p}/{i}", size, t, False, CREATED)
                for i, (p, size, t) in enumerate(platform.files)
            ),
        )
