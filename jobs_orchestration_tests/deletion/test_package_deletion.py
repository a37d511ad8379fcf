"""delete_package_job on PostgreSQL and the moto server: what goes, what stays, what is recorded."""

from __future__ import annotations

from jobs_orchestration.db import platform
from jobs_orchestration.defs.deletion.config import DELETE_PACKAGES_OP
from jobs_orchestration.defs.storage.refresh import CHANGED_ORGANIZATIONS_TAG
from jobs_orchestration.devstack.aws import DATASET_BUCKET, TIMESERIES_BUCKET
from jobs_orchestration_tests.support.platform_data import count_rows, keys_in, package_state
from jobs_orchestration_tests.support.runs import audit_rows, step_metadata


def test_file_package_loses_every_object_and_row_and_ends_deleted(
    data, s3, platform_db, delete_packages, instance
):
    org = data.organization()
    dataset = data.dataset(org)
    package = data.package(dataset, org)
    data.file(package, DATASET_BUCKET, "o/d/p/scan.pdf", body=b"12345")
    data.file(
        package, DATASET_BUCKET, "o/d/p/scan.png", body=b"123", object_type=platform.FileObjectType.VIEW
    )
    data.file(package, DATASET_BUCKET, "o/d/p/scan.txt", body=b"1", object_type=platform.FileObjectType.FILE)
    keeper = data.package(dataset, org, state=platform.PackageState.READY)
    data.file(keeper, DATASET_BUCKET, "o/d/keep/file.pdf")

    result = delete_packages((package, org))

    assert result.success
    assert keys_in(s3, DATASET_BUCKET) == {"o/d/keep/file.pdf"}
    assert package_state(platform_db.engine, package) == "DELETED"
    assert count_rows(platform_db.engine, platform.File, platform.File.package_id == package) == 0
    assert (
        count_rows(platform_db.engine, platform.PackageStorage, platform.PackageStorage.package_id == package)
        == 0
    )
    assert (
        count_rows(platform_db.engine, platform.PackageStorage, platform.PackageStorage.package_id == keeper)
        == 1
    )
    [audit] = audit_rows(platform_db.engine)
    assert (audit.job_name, audit.job_id, audit.trace_id, audit.user_id) == (
        "DeletePackageJob",
        f"job-{package}",
        f"trace-{package}",
        "N:user:tester",
    )
    assert (audit.outcome, audit.resource_ids, audit.organization_id) == ("deleted", [package], org)
    assert (audit.packages_deleted, audit.files_deleted, audit.objects_deleted, audit.bytes_deleted) == (
        1,
        3,
        3,
        9,
    )
    assert audit.dagster_run_id == result.run_id
    metadata = step_metadata(result, DELETE_PACKAGES_OP)
    assert (metadata["files_deleted"], metadata["bytes_deleted"], metadata["outcome"]) == (3, 9, "deleted")
    assert (metadata["objects_deleted"], metadata["size_deleted"]) == (3, "9 B")
    tags = instance.get_run_by_id(result.run_id).tags
    assert tags["job_family"] == "deletion"
    assert tags["deletion/outcome"] == "deleted"
    # The figures are in the metadata, not in tags nobody filters by.
    assert not [name for name in tags if name.startswith("deletion/") and name != "deletion/outcome"]


def test_collection_three_levels_deep_with_deleting_children_is_deleted_whole(
    data, s3, platform_db, delete_packages
):
    org = data.organization()
    dataset = data.dataset(org)
    root = data.package(dataset, org, package_type=platform.PackageType.COLLECTION)
    child = data.package(dataset, org, parent_id=root, package_type=platform.PackageType.COLLECTION)
    grandchild = data.package(dataset, org, parent_id=child, package_type=platform.PackageType.COLLECTION)
    leaves = [data.package(dataset, org, parent_id=parent) for parent in (root, child, grandchild)]
    for leaf in leaves:
        data.file(leaf, DATASET_BUCKET, f"tree/{leaf}/data.csv")

    result = delete_packages((root, org))

    assert result.success
    assert keys_in(s3, DATASET_BUCKET) == set()
    for package in (root, child, grandchild, *leaves):
        assert package_state(platform_db.engine, package) == "DELETED"
    assert count_rows(platform_db.engine, platform.PackageStorage) == 0
    [audit] = audit_rows(platform_db.engine)
    assert (audit.packages_deleted, audit.files_deleted) == (6, 3)


def test_time_series_package_loses_ranges_objects_layers_annotations_groups(
    data, s3, platform_db, delete_packages
):
    org = data.organization()
    dataset = data.dataset(org)
    series = data.timeseries(dataset, org, TIMESERIES_BUCKET)
    other = data.timeseries(dataset, org, TIMESERIES_BUCKET)
    data.file(series.package_id, DATASET_BUCKET, "ts/source.edf")

    result = delete_packages((series.package_id, org))

    assert result.success
    assert keys_in(s3, TIMESERIES_BUCKET) == set(other.range_keys)
    assert keys_in(s3, DATASET_BUCKET) == set()
    engine = platform_db.engine
    for model in (
        platform.TimeSeriesChannel,
        platform.TimeSeriesLayer,
        platform.TimeSeriesAnnotation,
        platform.TimeSeriesChannelGroup,
    ):
        assert count_rows(engine, model, model.package_id == series.package_id) == 0
        assert count_rows(engine, model, model.package_id == other.package_id) > 0
    assert count_rows(engine, platform.TimeSeriesRange) == 4
    assert package_state(engine, series.package_id) == "DELETED"
    [audit] = audit_rows(engine)
    assert audit.objects_deleted == 5


def test_prefix_file_loses_every_object_under_it_and_spares_its_neighbours(
    data, s3, platform_db, delete_packages
):
    org = data.organization()
    dataset = data.dataset(org)
    package = data.package(dataset, org, package_type=platform.PackageType.SLIDE)
    data.prefix_file(package, DATASET_BUCKET, "slides/42/tiles", count=7)
    data.put(DATASET_BUCKET, "slides/42/tiles-other/keep.bin")

    result = delete_packages((package, org))

    assert result.success
    assert keys_in(s3, DATASET_BUCKET) == {"slides/42/tiles-other/keep.bin"}
    assert count_rows(platform_db.engine, platform.File) == 0
    [audit] = audit_rows(platform_db.engine)
    assert (audit.files_deleted, audit.objects_deleted, audit.bytes_deleted) == (1, 7, 35)


def test_ready_package_is_refused_and_nothing_is_deleted(data, s3, platform_db, delete_packages):
    org = data.organization()
    dataset = data.dataset(org)
    package = data.package(dataset, org, state=platform.PackageState.READY)
    child = data.package(dataset, org, parent_id=package)
    data.file(child, DATASET_BUCKET, "ready/child.pdf")

    result = delete_packages((package, org))

    assert not result.success
    failure = result.failure_data_for_node(DELETE_PACKAGES_OP).error
    assert f"package_id {package} is in state READY, not DELETING" in failure.message
    assert keys_in(s3, DATASET_BUCKET) == {"ready/child.pdf"}
    assert package_state(platform_db.engine, child) == "DELETING"
    assert count_rows(platform_db.engine, platform.File) == 1
    [audit] = audit_rows(platform_db.engine)
    assert audit.outcome == "refused" and "READY" in audit.detail["message"]


def test_other_organizations_package_is_refused(data, s3, platform_db, delete_packages):
    owner = data.organization()
    stranger = data.organization()
    package = data.package(data.dataset(owner), owner)
    data.file(package, DATASET_BUCKET, "theirs.pdf")

    result = delete_packages((package, stranger))

    assert not result.success
    message = result.failure_data_for_node(DELETE_PACKAGES_OP).error.message
    assert (
        f"package_id {package} belongs to organization {owner}, not to organization_id {stranger}" in message
    )
    assert keys_in(s3, DATASET_BUCKET) == {"theirs.pdf"}
    assert package_state(platform_db.engine, package) == "DELETING"


def test_a_missing_package_is_not_found_and_a_missing_object_is_success(
    data, s3, platform_db, delete_packages
):
    org = data.organization()
    package = data.package(data.dataset(org), org)
    data.file(package, DATASET_BUCKET, "never/uploaded.pdf", stored=False)

    # From the queue: a package that is not there (its dataset deleted, say) is done, not dead-lettered.
    result = delete_packages((987654, org), (package, org), from_queue=True)

    assert result.success
    assert package_state(platform_db.engine, package) == "DELETED"
    outcomes = [row.outcome for row in audit_rows(platform_db.engine)]
    assert outcomes == ["not_found", "deleted"]
    metadata = step_metadata(result, DELETE_PACKAGES_OP)
    assert (metadata["outcome"], metadata["not_found"], metadata["dead_lettered"]) == ("not_found", 1, 0)
    # Deleted before: a DELETED tombstone, told apart from a package that is not there.
    again = delete_packages((package, org), from_queue=True)
    assert again.success
    assert audit_rows(platform_db.engine)[-1].outcome == "already_deleted"


def test_a_missing_package_launched_from_the_ui_fails_the_run_and_the_others_are_done(
    data, s3, platform_db, delete_packages
):
    org = data.organization()
    package = data.package(data.dataset(org), org)
    data.file(package, DATASET_BUCKET, "real.pdf")

    result = delete_packages((987654, org), (package, org))

    assert not result.success
    message = result.failure_data_for_node(DELETE_PACKAGES_OP).error.message
    assert "package_id 987654 not found: no such package" in message
    assert package_state(platform_db.engine, package) == "DELETED"
    assert keys_in(s3, DATASET_BUCKET) == set()
    assert [row.outcome for row in audit_rows(platform_db.engine)] == ["not_found", "deleted"]


def test_one_refused_request_does_not_stop_the_others_but_fails_the_run(
    data, s3, platform_db, delete_packages
):
    org = data.organization()
    dataset = data.dataset(org)
    ready = data.package(dataset, org, state=platform.PackageState.READY)
    deleting = data.package(dataset, org)
    data.file(ready, DATASET_BUCKET, "ready.pdf")
    data.file(deleting, DATASET_BUCKET, "deleting.pdf")

    result = delete_packages((ready, org), (deleting, org))

    assert not result.success
    assert keys_in(s3, DATASET_BUCKET) == {"ready.pdf"}
    assert [(row.resource_ids, row.outcome) for row in audit_rows(platform_db.engine)] == [
        ([ready], "refused"),
        ([deleting], "deleted"),
    ]
    requests = step_metadata(result, DELETE_PACKAGES_OP)["requests"]
    assert [request["outcome"] for request in requests] == ["refused", "deleted"]


def test_dry_run_reports_and_deletes_nothing(data, s3, platform_db, delete_packages):
    org = data.organization()
    dataset = data.dataset(org)
    root = data.package(dataset, org, package_type=platform.PackageType.COLLECTION)
    leaf = data.package(dataset, org, parent_id=root)
    data.file(leaf, DATASET_BUCKET, "dry/a.pdf", body=b"1234")
    data.prefix_file(leaf, DATASET_BUCKET, "dry/tiles", count=3)
    series = data.timeseries(dataset, org, TIMESERIES_BUCKET, parent_id=root)

    result = delete_packages((root, org), dry_run=True)

    assert result.success
    assert len(keys_in(s3, DATASET_BUCKET)) == 4 and len(keys_in(s3, TIMESERIES_BUCKET)) == 4
    assert package_state(platform_db.engine, root) == "DELETING"
    assert count_rows(platform_db.engine, platform.TimeSeriesRange) == 4
    metadata = step_metadata(result, DELETE_PACKAGES_OP)
    assert metadata["outcome"] == "dry_run"
    assert (metadata["would_delete_packages"], metadata["would_delete_files"]) == (3, 2)
    assert (metadata["would_delete_objects"], metadata["would_delete_bytes"]) == (8, 19)
    assert metadata["would_delete_timeseries_ranges"] == 4
    assert "s3://platform-datasets/dry/a.pdf" in metadata["sample_keys"]
    assert series.range_keys[0] in " ".join(metadata["sample_keys"])
    [audit] = audit_rows(platform_db.engine)
    assert audit.outcome == "dry_run" and audit.objects_deleted == 0
    assert audit.detail["figures"]["would_delete_objects"] == 8


def test_a_run_tags_the_organizations_whose_data_it_changed_and_no_others(
    data, platform_db, delete_packages, instance
):
    org, other = data.organization(), data.organization()
    deleting = data.package(data.dataset(org), org)
    data.file(deleting, DATASET_BUCKET, "changed.pdf")
    ready = data.package(data.dataset(other), other, state=platform.PackageState.READY)

    dry_run = delete_packages((deleting, org), dry_run=True)
    changed = delete_packages((deleting, org), (ready, other), from_queue=True)
    refused_only = delete_packages((ready, other), from_queue=True)

    assert changed.success and refused_only.success and dry_run.success
    assert instance.get_run_by_id(changed.run_id).tags[CHANGED_ORGANIZATIONS_TAG] == str(org)
    assert CHANGED_ORGANIZATIONS_TAG not in instance.get_run_by_id(refused_only.run_id).tags
    assert CHANGED_ORGANIZATIONS_TAG not in instance.get_run_by_id(dry_run.run_id).tags
