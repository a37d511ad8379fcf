"""A mix of job messages for the running system, the platform rows and objects they act on, and the
check of their effects: what had to go is gone (rows and objects), what had to stay is all there,
the changelog is recorded and published."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from jobs_orchestration.db.platform import (
    Dataset,
    DatasetAssetKind,
    DatasetChangelogEvent,
    DatasetState,
    File,
    JobAuditLog,
    Package,
    PackageState,
    PackageType,
    User,
)
from jobs_orchestration.devstack.aws import DATASET_ASSETS_BUCKET, DATASET_BUCKET, TIMESERIES_BUCKET
from jobs_orchestration_tests.support.platform_data import PlatformData, keys_in, package_state

_users = itertools.count(1)


@dataclass
class Workload:
    """What one round sends, and what it must leave behind."""

    messages: list[list[str]] = field(default_factory=list)
    """Arguments of `jobs-orchestration enqueue`, one list per message."""
    job_ids: set[str] = field(default_factory=set)
    deleted_packages: list[int] = field(default_factory=list)
    deleted_datasets: list[int] = field(default_factory=list)
    kept_packages: list[int] = field(default_factory=list)
    kept_datasets: list[int] = field(default_factory=list)
    changelog_job_ids: set[str] = field(default_factory=set)
    deletion_job_ids: set[str] = field(default_factory=set)
    deleted_objects: set[tuple[str, str]] = field(default_factory=set)
    kept_objects: set[tuple[str, str]] = field(default_factory=set)

    def add(self, *arguments: str) -> str:
        job_id = str(uuid.uuid4())
        self.messages.append([*arguments, "--id", job_id])
        self.job_ids.add(job_id)
        return job_id


def build_workload(engine: Engine, s3: Any, *, tag: str) -> Workload:
    """Two organizations. The first has a dataset that stays, holding a package to delete (files, a
    multi-object file, a time-series package under it) and one to keep; the second a dataset to
    delete. Messages: a package deletion, a dataset deletion, two changelog messages on the kept
    dataset. (Storage refreshes follow each deletion by themselves; a refresh message adds a run of
    several step processes, minutes on a busy two-core machine, so it is left to the storage tests.)
    `tag` keeps object keys of different rounds apart."""
    data = PlatformData(engine, s3)
    workload = Workload()
    user_node_id = f"N:user:{tag}-{next(_users)}"
    with engine.begin() as connection:
        connection.execute(sa.insert(User).values(node_id=user_node_id, email=f"{tag}@example.org"))

    first, second = data.organization(), data.organization()
    kept = data.dataset(first, state=DatasetState.READY)
    workload.kept_datasets.append(kept)
    folder = data.package(kept, first, package_type=PackageType.COLLECTION)
    files_package = data.package(kept, first, parent_id=folder)
    data.file(files_package, DATASET_BUCKET, f"{tag}/kept-dataset/doomed/a.bin")
    data.prefix_file(files_package, DATASET_BUCKET, f"{tag}/kept-dataset/doomed/zarr", 3)
    series = data.timeseries(kept, first, TIMESERIES_BUCKET, parent_id=folder)
    kept_package = data.package(kept, first, state=PackageState.READY)
    data.file(kept_package, DATASET_BUCKET, f"{tag}/kept-dataset/kept/b.bin")
    workload.deleted_packages += [folder, files_package, series.package_id]
    workload.kept_packages.append(kept_package)

    doomed = data.dataset(second)
    data.asset(doomed, DatasetAssetKind.BANNER, DATASET_ASSETS_BUCKET, f"{tag}/{doomed}/banner.png")
    doomed_folder = data.package(doomed, second, package_type=PackageType.COLLECTION)
    for index in range(3):
        child = data.package(doomed, second, parent_id=doomed_folder)
        data.file(child, DATASET_BUCKET, f"{tag}/{doomed}/{index}.bin")
    workload.deleted_datasets.append(doomed)

    deleted_prefixes = (f"{tag}/kept-dataset/doomed/", f"{tag}/{doomed}/", f"timeseries/{series.package_id}/")
    for bucket, key in data.objects:
        if key.startswith(deleted_prefixes):
            workload.deleted_objects.add((bucket, key))
        else:
            workload.kept_objects.add((bucket, key))

    user = ["--user-id", user_node_id]
    workload.deletion_job_ids.add(
        workload.add("delete-package", "--package-id", str(folder), "--organization-id", str(first), *user)
    )
    workload.deletion_job_ids.add(
        workload.add("delete-dataset", "--dataset-id", str(doomed), "--organization-id", str(second), *user)
    )
    for name in ("a", "b"):
        job_id = workload.add(
            "changelog",
            "--organization-id",
            str(first),
            "--dataset-id",
            str(kept),
            *user,
            "--event",
            "UPDATE_NAME",
            "--detail",
            f'{{"oldName": "{name}", "newName": "{name}2"}}',
        )
        workload.changelog_job_ids.add(job_id)
    return workload


def effects_missing(engine: Engine, s3: Any, workload: Workload) -> list[str]:
    """Every way the platform differs from what the workload's messages should have left; [] when
    all is as it should be."""
    problems: list[str] = []
    for package in workload.deleted_packages:
        if package_state(engine, package) != "DELETED":
            problems.append(f"package {package} is {package_state(engine, package)}, not DELETED")
    for package in workload.kept_packages:
        if package_state(engine, package) != "READY":
            problems.append(f"kept package {package} is {package_state(engine, package)}")
    with engine.connect() as connection:
        present = set(
            connection.execute(
                sa.select(Dataset.id).where(
                    Dataset.id.in_(workload.deleted_datasets + workload.kept_datasets)
                )
            ).scalars()
        )
        leftover_packages = connection.execute(
            sa.select(sa.func.count()).where(Package.dataset_id.in_(workload.deleted_datasets))
        ).scalar_one()
        leftover_files = connection.execute(
            sa.select(sa.func.count()).where(File.package_id.in_(workload.deleted_packages))
        ).scalar_one()
        changelog = connection.execute(
            sa.select(DatasetChangelogEvent.job_id, DatasetChangelogEvent.published_at).where(
                DatasetChangelogEvent.job_id.in_(workload.changelog_job_ids)
            )
        ).all()
        audited_done = set(
            connection.execute(
                sa.select(JobAuditLog.job_id).where(
                    JobAuditLog.job_id.in_(workload.job_ids),
                    JobAuditLog.outcome.in_(["deleted", "already_deleted", "not_found"]),
                )
            ).scalars()
        )
    problems += [f"dataset {d} still there" for d in workload.deleted_datasets if d in present]
    problems += [f"kept dataset {d} is gone" for d in workload.kept_datasets if d not in present]
    if leftover_packages:
        problems.append(f"{leftover_packages} package row(s) of deleted datasets left")
    if leftover_files:
        problems.append(f"{leftover_files} file row(s) of deleted packages left")
    if sorted(job_id for job_id, _ in changelog) != sorted(workload.changelog_job_ids):
        problems.append(
            f"changelog rows {sorted(j for j, _ in changelog)} != {sorted(workload.changelog_job_ids)}"
        )
    problems += [f"changelog event of {job_id} not published" for job_id, at in changelog if at is None]
    if len(audited_done) != len(workload.deletion_job_ids):
        problems.append(
            f"deletions without a successful audit row: {workload.deletion_job_ids - audited_done}"
        )

    buckets = {bucket for bucket, _ in workload.deleted_objects | workload.kept_objects}
    stored = {(bucket, key) for bucket in buckets for key in keys_in(s3, bucket)}
    problems += [f"s3://{b}/{k} should be gone" for b, k in sorted(workload.deleted_objects & stored)]
    problems += [
        f"s3://{b}/{k} was deleted but should stay" for b, k in sorted(workload.kept_objects - stored)
    ]
    return problems
