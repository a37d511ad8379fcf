"""delete_dataset_job: the cascade from assets to packages to the dataset's rows."""

from __future__ import annotations

import datetime as dt
import logging
import math

import sqlalchemy as sa

from jobs_orchestration.db.bulk import bulk_insert
from jobs_orchestration.db.platform import (
    Dataset,
    DatasetAsset,
    DatasetAssetKind,
    DatasetState,
    DatasetStorage,
    File,
    Package,
    PackageState,
    PackageStorage,
    PackageType,
    TimeSeriesChannel,
)
from jobs_orchestration.defs.deletion.config import DELETE_DATASET_OP
from jobs_orchestration.deletion.rows import remove_dataset
from jobs_orchestration.devstack.aws import DATASET_ASSETS_BUCKET, DATASET_BUCKET, TIMESERIES_BUCKET
from jobs_orchestration.devstack.seed import PLATFORM_COLUMNS
from jobs_orchestration_tests.support.faults import record_delete_calls
from jobs_orchestration_tests.support.platform_data import count_rows, keys_in, package_state
from jobs_orchestration_tests.support.queue import dead_letters
from jobs_orchestration_tests.support.runs import audit_rows, step_metadata

SECOND_BUCKET = "platform-datasets-eu"


def test_dataset_with_mixed_packages_across_two_buckets_goes_whole(data, s3, platform_db, delete_dataset):
    s3.create_bucket(Bucket=SECOND_BUCKET)
    org = data.organization()
    dataset = data.dataset(org)
    data.asset(dataset, DatasetAssetKind.BANNER, DATASET_ASSETS_BUCKET, f"{dataset}/banner.png")
    data.asset(dataset, DatasetAssetKind.README, DATASET_ASSETS_BUCKET, f"{dataset}/readme.md")
    folder = data.package(dataset, org, package_type=PackageType.COLLECTION)
    in_folder = data.package(dataset, org, parent_id=folder)
    data.file(in_folder, DATASET_BUCKET, "mixed/a.pdf")
    loose = data.package(dataset, org)
    data.file(loose, SECOND_BUCKET, "mixed/b.csv")
    data.prefix_file(loose, SECOND_BUCKET, "mixed/zarr", count=3)
    data.timeseries(dataset, org, TIMESERIES_BUCKET, parent_id=folder)
    with platform_db.begin() as connection:
        connection.execute(sa.insert(DatasetStorage).values(dataset_id=dataset, organization_id=org, size=9))

    kept = data.dataset(org, state=DatasetState.READY)
    kept_package = data.package(kept, org)
    data.file(kept_package, DATASET_BUCKET, "kept/c.pdf")
    data.asset(kept, DatasetAssetKind.BANNER, DATASET_ASSETS_BUCKET, f"{kept}/banner.png")
    kept_series = data.timeseries(kept, org, TIMESERIES_BUCKET)

    result = delete_dataset(dataset, org)

    assert result.success, result.failure_data_for_node(DELETE_DATASET_OP)
    assert keys_in(s3, DATASET_BUCKET) == {"kept/c.pdf"}
    assert keys_in(s3, SECOND_BUCKET) == set()
    assert keys_in(s3, DATASET_ASSETS_BUCKET) == {f"{kept}/banner.png"}
    assert keys_in(s3, TIMESERIES_BUCKET) == set(kept_series.range_keys)
    engine = platform_db.engine
    assert count_rows(engine, Dataset, Dataset.id == dataset) == 0
    assert count_rows(engine, Package, Package.dataset_id == dataset) == 0
    assert count_rows(engine, DatasetAsset) == 1
    assert count_rows(engine, DatasetStorage) == 0
    assert count_rows(engine, Package, Package.dataset_id == kept) == 2
    assert count_rows(engine, File) == 1
    assert count_rows(engine, TimeSeriesChannel) == 2
    [audit] = audit_rows(engine)
    assert (audit.job_name, audit.outcome, audit.resource_ids) == ("DeleteDatasetJob", "deleted", [dataset])
    assert (audit.packages_deleted, audit.files_deleted, audit.objects_deleted) == (4, 3, 2 + 1 + 1 + 3 + 4)
    metadata = step_metadata(result, DELETE_DATASET_OP)
    assert metadata["dataset_assets_deleted"] == 2 and metadata["timeseries_ranges_deleted"] == 4


def test_removing_a_dataset_removes_the_cache_rows_its_tombstones_still_have(data, platform_db):
    """Nothing cascades into package_storage: a cache row that outlived its package's closing (a
    refresh that raced the deletion) goes with the tombstone, and the other dataset's row stays."""
    org = data.organization()
    dataset, kept = data.dataset(org), data.dataset(org, state=DatasetState.READY)
    tombstone = data.package(dataset, org, state=PackageState.DELETED, storage_size=7)
    kept_package = data.package(kept, org, storage_size=5)

    assert remove_dataset(platform_db.engine, dataset, org, page_size=1).count == 0

    engine = platform_db.engine
    assert count_rows(engine, Package, Package.id == tombstone) == 0
    assert count_rows(engine, Dataset, Dataset.id == dataset) == 0
    assert count_rows(engine, PackageStorage, PackageStorage.package_id == tombstone) == 0
    assert count_rows(engine, PackageStorage, PackageStorage.package_id == kept_package) == 1


def test_dataset_not_deleting_is_refused_before_anything_is_touched(data, s3, platform_db, delete_dataset):
    org = data.organization()
    dataset = data.dataset(org, state=DatasetState.READY)
    data.asset(dataset, DatasetAssetKind.BANNER, DATASET_ASSETS_BUCKET, "ready/banner.png")
    data.file(data.package(dataset, org), DATASET_BUCKET, "ready/a.pdf")

    result = delete_dataset(dataset, org)

    assert not result.success
    message = result.failure_data_for_node(DELETE_DATASET_OP).error.message
    assert f"dataset_id {dataset} is in state READY, not DELETING" in message
    assert keys_in(s3, DATASET_ASSETS_BUCKET) == {"ready/banner.png"}
    assert keys_in(s3, DATASET_BUCKET) == {"ready/a.pdf"}
    assert count_rows(platform_db.engine, DatasetAsset) == 1
    assert [row.outcome for row in audit_rows(platform_db.engine)] == ["refused"]


def test_other_organizations_dataset_is_refused(data, s3, platform_db, delete_dataset):
    owner, stranger = data.organization(), data.organization()
    dataset = data.dataset(owner)
    data.file(data.package(dataset, owner), DATASET_BUCKET, "theirs/a.pdf")

    result = delete_dataset(dataset, stranger)

    assert not result.success
    assert keys_in(s3, DATASET_BUCKET) == {"theirs/a.pdf"}
    assert count_rows(platform_db.engine, Dataset) == 1


def test_a_package_of_another_organization_in_the_dataset_is_left_untouched(
    data, s3, platform_db, delete_dataset
):
    """A package row filed under the dataset but owned by another organization (inconsistent data) is
    not the requester's to delete: its rows and objects stay, and so does the dataset row, which the
    database would otherwise cascade into it. The requester's own packages and assets go; the run fails
    permanently (a retry cannot help) and names the package that held it."""
    org, other = data.organization(), data.organization()
    dataset = data.dataset(org)
    data.asset(dataset, DatasetAssetKind.BANNER, DATASET_ASSETS_BUCKET, f"{dataset}/banner.png")
    own = data.package(dataset, org)
    data.file(own, DATASET_BUCKET, "own/a.pdf")
    foreign = data.package(dataset, other, state=PackageState.READY)
    data.file(foreign, DATASET_BUCKET, "foreign/b.pdf")
    foreign_series = data.timeseries(dataset, other, TIMESERIES_BUCKET)
    foreign_ids = [foreign, foreign_series.package_id]
    engine = platform_db.engine

    dry = delete_dataset(dataset, org, dry_run=True)

    assert dry.success
    assert step_metadata(dry, DELETE_DATASET_OP)["would_delete_packages"] == 1
    [dry_audit] = audit_rows(engine)
    assert "2 package(s) of other organizations" in dry_audit.detail["message"]

    for _attempt in range(2):  # a re-run meets the same package and says the same
        result = delete_dataset(dataset, org)

        assert not result.success
        message = result.failure_data_for_node(DELETE_DATASET_OP).error.message
        assert f"package_id {foreign} (organization_id {other})" in message, message
        assert "left untouched" in message and "dataset row stays" in message
        assert keys_in(s3, DATASET_BUCKET) == {"foreign/b.pdf"}
        assert keys_in(s3, TIMESERIES_BUCKET) == set(foreign_series.range_keys)
        assert keys_in(s3, DATASET_ASSETS_BUCKET) == set()
        assert count_rows(engine, Dataset, Dataset.id == dataset, Dataset.state == DatasetState.DELETING) == 1
        assert count_rows(engine, Package, Package.id.in_(foreign_ids), Package.organization_id == other) == 2
        assert package_state(engine, foreign) == "READY"
        assert package_state(engine, foreign_series.package_id) == "DELETING"
        assert count_rows(engine, File, File.package_id == foreign) == 1
        assert count_rows(engine, PackageStorage, PackageStorage.package_id.in_(foreign_ids)) == 2
        assert (
            count_rows(engine, TimeSeriesChannel, TimeSeriesChannel.package_id == foreign_series.package_id)
            == 2
        )
        assert (
            count_rows(engine, Package, Package.organization_id == org, Package.state != PackageState.DELETED)
            == 0
        )
    audits = audit_rows(engine)[1:]
    assert [row.outcome for row in audits] == ["failed", "failed"]
    assert [row.detail["attempts"] for row in audits] == [1, 1]  # permanent: the op was not retried
    assert audits[0].packages_deleted == 1 and audits[1].packages_deleted == 0
    assert audits[0].detail["transient"] is False


def test_a_dataset_already_deleted_is_not_found_and_its_job_message_still_succeeds(
    data, s3, platform_db, delete_dataset, local_aws, instance
):
    org = data.organization()
    dataset = data.dataset(org)
    data.file(data.package(dataset, org), DATASET_BUCKET, "gone/a.pdf")
    assert delete_dataset(dataset, org, from_queue=True).success

    # The message comes again after the dataset's rows went (by cascade): nothing is left to tell
    # "deleted" from "never there", and the message is done, not dead-lettered.
    again = delete_dataset(dataset, org, from_queue=True)

    assert again.success
    assert [row.outcome for row in audit_rows(platform_db.engine)] == ["deleted", "not_found"]
    metadata = step_metadata(again, DELETE_DATASET_OP)
    assert (metadata["outcome"], metadata["not_found"], metadata["dead_lettered"]) == ("not_found", 1, 0)
    assert f"dataset_id {dataset} not found" in metadata["requests"][0]["message"]
    assert instance.get_run_by_id(again.run_id).tags["deletion/outcome"] == "not_found"
    assert dead_letters(local_aws) == []
    warnings = [
        event.message
        for event in instance.all_logs(again.run_id)
        if event.level == logging.WARNING and "not_found" in event.message
    ]
    assert warnings, "a message whose dataset is not found is logged as a warning"


def test_a_missing_dataset_launched_from_the_ui_fails_as_not_found(
    data, platform_db, delete_dataset, instance
):
    org = data.organization()

    result = delete_dataset(424242, org)

    assert not result.success
    assert (
        "dataset_id 424242 not found: no such dataset"
        in result.failure_data_for_node(DELETE_DATASET_OP).error.message
    )
    assert [row.outcome for row in audit_rows(platform_db.engine)] == ["not_found"]
    assert step_metadata(result, DELETE_DATASET_OP)["outcome"] == "not_found"
    assert instance.get_run_by_id(result.run_id).tags["deletion/outcome"] == "not_found"
    # Not retried: a retry would find the same nothing.
    assert not [event for event in result.all_events if event.event_type_value == "STEP_UP_FOR_RETRY"]


def test_dry_run_counts_and_deletes_nothing(data, s3, platform_db, delete_dataset):
    org = data.organization()
    dataset = data.dataset(org)
    data.asset(dataset, DatasetAssetKind.README, DATASET_ASSETS_BUCKET, "dry/readme.md")
    data.file(data.package(dataset, org), DATASET_BUCKET, "dry/a.pdf", body=b"123")

    result = delete_dataset(dataset, org, dry_run=True)

    assert result.success
    metadata = step_metadata(result, DELETE_DATASET_OP)
    assert (metadata["would_delete_objects"], metadata["would_delete_bytes"]) == (2, 3)
    assert keys_in(s3, DATASET_BUCKET) == {"dry/a.pdf"}
    assert count_rows(platform_db.engine, Dataset) == 1
    assert [row.outcome for row in audit_rows(platform_db.engine)] == ["dry_run"]


def test_delete_objects_calls_are_full_batches_per_bucket(data, s3, platform_db, delete_dataset, monkeypatch):
    """Keys are gathered per bucket across packages, so the call count is the minimum; moto does not
    enforce the 1,000-key limit, so the test checks each call's size itself."""
    s3.create_bucket(Bucket=SECOND_BUCKET)
    org = data.organization()
    dataset = data.dataset(org)
    packages = [data.package(dataset, org, storage_size=None) for _ in range(30)]
    counts = {DATASET_BUCKET: 2_300, SECOND_BUCKET: 1_200}
    now = dt.datetime.now(dt.UTC)
    rows = (
        (
            packages[index % len(packages)],
            f"f{index}",
            bucket,
            f"{bucket}/{index}.bin",
            10,
            "source",
            False,
            now,
        )
        for bucket, count in counts.items()
        for index in range(count)
    )
    with platform_db.begin() as connection:
        bulk_insert(connection, File.__table__, PLATFORM_COLUMNS[File][1:], rows)  # ids from the database
    calls = record_delete_calls(monkeypatch)

    result = delete_dataset(dataset, org)

    assert result.success
    for bucket, count in counts.items():
        sizes = [len(call) for name, call in calls if name == bucket]
        assert len(sizes) == math.ceil(count / 1000), (bucket, sizes)
        assert max(sizes) <= 1000 and sum(sizes) == count
    [audit] = audit_rows(platform_db.engine)
    assert (audit.files_deleted, audit.bytes_deleted, audit.packages_deleted) == (3_500, 35_000, 30)
