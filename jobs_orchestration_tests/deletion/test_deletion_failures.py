"""Partial failures, crashes and retries: a failed deletion says what remains, and the next attempt
deletes just that. Also: versioned buckets lose every version."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from jobs_orchestration.db.platform import File, PackageType
from jobs_orchestration.defs.deletion.config import DELETE_DATASET_OP, DELETE_PACKAGES_OP
from jobs_orchestration.deletion import rows
from jobs_orchestration.devstack.aws import DATASET_BUCKET
from jobs_orchestration.failures import is_transient
from jobs_orchestration_tests.support.faults import record_delete_calls, wrap_s3_clients
from jobs_orchestration_tests.support.platform_data import count_rows, keys_in, package_state
from jobs_orchestration_tests.support.runs import audit_rows, step_metadata


class SimulatedCrash(Exception):
    """Stands for the process dying between two steps."""


def _package_with_files(data, count: int, prefix: str = "p"):
    org = data.organization()
    dataset = data.dataset(org)
    package = data.package(dataset, org)
    keys = [f"{prefix}/{index}.bin" for index in range(count)]
    for key in keys:
        data.file(package, DATASET_BUCKET, key)
    return org, dataset, package, keys


def test_transient_per_key_error_is_retried_for_just_that_key(
    data, s3, platform_db, delete_packages, monkeypatch
):
    org, _dataset, package, keys = _package_with_files(data, 5)
    flaky = keys[2]
    failed_once: set[str] = set()

    def internal_error_once(bucket: str, key: str) -> str | None:
        if key == flaky and key not in failed_once:
            failed_once.add(key)
            return "InternalError"
        return None

    calls = record_delete_calls(monkeypatch, per_key_errors=internal_error_once)

    result = delete_packages((package, org))

    assert result.success
    assert [sorted(keys_sent) for _bucket, keys_sent in calls] == [sorted(keys), [flaky]]
    assert keys_in(s3, DATASET_BUCKET) == set()
    assert package_state(platform_db.engine, package) == "DELETED"


def test_permanent_per_key_error_fails_the_run_naming_the_key_and_a_rerun_deletes_just_it(
    data, s3, platform_db, delete_packages, monkeypatch
):
    org, _dataset, package, keys = _package_with_files(data, 4)
    stuck = keys[1]
    calls = record_delete_calls(
        monkeypatch, per_key_errors=lambda bucket, key: "AccessDenied" if key == stuck else None
    )

    failed = delete_packages((package, org))

    assert not failed.success
    assert len(calls) == 1, "a permanent error is not retried"
    assert keys_in(s3, DATASET_BUCKET) == {stuck}
    assert count_rows(platform_db.engine, File) == 1
    assert package_state(platform_db.engine, package) == "DELETING"
    metadata = step_metadata(failed, DELETE_PACKAGES_OP)
    assert (metadata["remaining_files"], metadata["files_deleted"], metadata["outcome"]) == (1, 3, "failed")
    [audit] = audit_rows(platform_db.engine)
    assert audit.outcome == "failed"
    assert audit.detail["errors"] == {f"s3://{DATASET_BUCKET}/{stuck}": "AccessDenied: injected"}
    assert any(stuck in line for line in audit.detail["remaining"])

    monkeypatch.undo()
    calls = record_delete_calls(monkeypatch)
    rerun = delete_packages((package, org))

    assert rerun.success
    assert calls == [(DATASET_BUCKET, [stuck])]
    assert keys_in(s3, DATASET_BUCKET) == set()
    assert package_state(platform_db.engine, package) == "DELETED"
    assert audit_rows(platform_db.engine)[-1].files_deleted == 1


def test_crash_after_the_objects_and_before_the_rows_then_a_rerun_completes(
    data, s3, platform_db, delete_dataset, monkeypatch
):
    org = data.organization()
    dataset = data.dataset(org)
    folder = data.package(dataset, org, package_type=PackageType.COLLECTION)
    for index in range(3):
        data.file(data.package(dataset, org, parent_id=folder), DATASET_BUCKET, f"crash/{index}.bin")
    real_forget = rows.forget

    def crash_before_rows(connection, owners):
        raise SimulatedCrash("process died after DeleteObjects, before the rows went")

    monkeypatch.setattr(rows, "forget", crash_before_rows)
    crashed = delete_dataset(dataset, org)

    assert not crashed.success
    assert keys_in(s3, DATASET_BUCKET) == set(), "the objects went first"
    assert count_rows(platform_db.engine, File) == 3, "the rows that locate them are still there"
    assert package_state(platform_db.engine, folder) == "DELETING"
    assert audit_rows(platform_db.engine)[-1].outcome == "failed"

    monkeypatch.setattr(rows, "forget", real_forget)
    rerun = delete_dataset(dataset, org)

    assert rerun.success, step_metadata(rerun, DELETE_DATASET_OP)
    assert count_rows(platform_db.engine, File) == 0
    assert package_state(platform_db.engine, folder) is None
    last = audit_rows(platform_db.engine)[-1]
    assert (last.outcome, last.files_deleted, last.packages_deleted) == ("deleted", 3, 4)


def test_versioned_bucket_loses_every_version_and_delete_marker(data, s3, platform_db, delete_packages):
    bucket = "platform-datasets-versioned"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    org = data.organization()
    package = data.package(data.dataset(org), org)
    data.file(package, bucket, "v/rewritten.bin", body=b"first")
    s3.put_object(Bucket=bucket, Key="v/rewritten.bin", Body=b"second")
    data.file(package, bucket, "v/already-deleted.bin")
    s3.delete_object(Bucket=bucket, Key="v/already-deleted.bin")
    data.prefix_file(package, bucket, "v/tiles", count=3)
    s3.put_object(Bucket=bucket, Key="v/tiles/part-0", Body=b"again")
    s3.put_object(Bucket=bucket, Key="v/kept.bin", Body=b"not ours")

    result = delete_packages((package, org))

    assert result.success
    listing = s3.list_object_versions(Bucket=bucket)
    left = {entry["Key"] for entry in (*listing.get("Versions", []), *listing.get("DeleteMarkers", []))}
    assert left == {"v/kept.bin"}


def test_transient_and_permanent_errors_are_told_apart():
    throttled = ClientError({"Error": {"Code": "SlowDown", "Message": "slow"}}, "DeleteObjects")
    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "DeleteObjects")
    assert is_transient(throttled)
    assert is_transient(EndpointConnectionError(endpoint_url="http://s3"))
    assert not is_transient(denied)
    assert not is_transient(SimulatedCrash())


@pytest.mark.parametrize("bad_id", [0, -5])
def test_ids_that_are_not_positive_fail_at_once_naming_the_field_and_change_nothing(
    data, s3, platform_db, delete_packages, bad_id
):
    org, _dataset, package, keys = _package_with_files(data, 1)

    result = delete_packages((bad_id, org))

    assert not result.success
    message = result.failure_data_for_node(DELETE_PACKAGES_OP).error.message
    assert f"requests[0].package_id is {bad_id}: ids are positive" in message
    assert not [event for event in result.all_events if event.event_type_value == "STEP_UP_FOR_RETRY"]
    assert keys_in(s3, DATASET_BUCKET) == set(keys)
    assert package_state(platform_db.engine, package) == "DELETING"
    assert audit_rows(platform_db.engine) == []


def test_throttled_calls_fail_the_attempt_and_the_retry_policy_finishes_the_work(
    data, s3, platform_db, delete_packages, monkeypatch
):
    org, _dataset, package, keys = _package_with_files(data, 3)
    throttled_calls = []

    def install(client):
        real = client.delete_objects

        def delete_objects(**kwargs):
            if not throttled_calls:  # the first op attempt: after the client's own attempts, still throttled
                throttled_calls.append(kwargs["Bucket"])
                raise ClientError({"Error": {"Code": "SlowDown", "Message": "slow"}}, "DeleteObjects")
            return real(**kwargs)

        client.delete_objects = delete_objects

    wrap_s3_clients(monkeypatch, install)

    result = delete_packages((package, org))

    assert result.success
    assert len(throttled_calls) == 1
    assert any(event.event_type_value == "STEP_UP_FOR_RETRY" for event in result.all_events)
    assert keys_in(s3, DATASET_BUCKET) == set()
    [audit] = audit_rows(platform_db.engine)
    assert (audit.outcome, audit.files_deleted, audit.detail["attempts"]) == ("deleted", 3, 2)
