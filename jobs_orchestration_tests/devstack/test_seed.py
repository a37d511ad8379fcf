import sqlalchemy as sa

from jobs_orchestration.db.email_parser import OrderAttachment, SnapshotFile, SnapshotType
from jobs_orchestration.db.platform import File, Package, PackageType, TimeSeriesRange
from jobs_orchestration.devstack.aws import TIMESERIES_BUCKET
from jobs_orchestration.devstack.seed import SeedSizes, http_object_writer, seed_email_parser, seed_platform
from jobs_orchestration.snapshots.store import LocalFolderStore

SIZES = SeedSizes(
    organizations=2, datasets_per_organization=2, packages_per_dataset=15, depth=4, snapshots=30
)


def object_keys(s3, bucket):
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def test_every_seeded_file_exists_in_s3(platform_db, local_aws):
    s3 = local_aws.client("s3")
    with http_object_writer(s3) as write, platform_db.begin() as connection:
        summary = seed_platform(connection, SIZES, write)

    with platform_db.begin() as connection:
        files = connection.execute(sa.select(File.s3_bucket, File.s3_key, File.is_prefix)).all()
        locations = connection.execute(sa.select(TimeSeriesRange.location)).scalars().all()
        packages = connection.execute(
            sa.select(Package.id, Package.parent_id, Package.dataset_id, Package.package_type)
        ).all()

    assert summary.rows["organizations"] == 2 and summary.rows["datasets"] == 4
    stored = {bucket: object_keys(s3, bucket) for bucket in {f.s3_bucket for f in files}}
    for bucket, key, is_prefix in files:
        if is_prefix:
            assert any(k.startswith(key + "/") for k in stored[bucket]), key
        else:
            assert key in stored[bucket], key
    assert set(locations) <= object_keys(s3, TIMESERIES_BUCKET) and locations

    # Trees are well formed: parents are collections of the same dataset.
    by_id = {p.id: p for p in packages}
    for package in packages:
        if package.parent_id is not None:
            parent = by_id[package.parent_id]
            assert parent.package_type == PackageType.COLLECTION and parent.dataset_id == package.dataset_id


def test_seeding_twice_adds_rather_than_collides(platform_db):
    with platform_db.begin() as connection:
        seed_platform(connection, SIZES)
        seed_platform(connection, SIZES)
        assert connection.execute(sa.select(sa.func.count()).select_from(Package)).scalar() == 2 * (
            4 * (SIZES.packages_per_dataset + SIZES.timeseries_per_dataset)
        )


def test_snapshots_are_stored_and_some_are_attached(email_parser_db, tmp_path):
    store = LocalFolderStore(tmp_path / "snapshots")
    with email_parser_db.begin() as connection:
        seed_email_parser(connection, store, SIZES)
        snapshots = connection.execute(sa.select(SnapshotFile.storage_key, SnapshotFile.snapshot_type)).all()
        attached = set(connection.execute(sa.select(OrderAttachment.file_id)).scalars())
    assert len(snapshots) == 30 and all(store.exists(key) for key, _ in snapshots)
    assert {kind for _, kind in snapshots} == set(SnapshotType)
    assert attached
