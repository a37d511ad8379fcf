"""The package deletions of one run share one DeleteObjects stream and one pass over their rows, and each
request still ends on its own: its outcome, its figures, its audit row, its errors, its dead letter.
On PostgreSQL and the moto server; S3 calls are counted with botocore's event hooks on the real clients."""

from __future__ import annotations

from collections import Counter
from typing import Any

import sqlalchemy as sa

from jobs_orchestration.db.engine import create_db_engine
from jobs_orchestration.db.migrate import upgrade
from jobs_orchestration.db.platform import File, PackageType
from jobs_orchestration.defs.deletion.config import DELETE_PACKAGES_OP
from jobs_orchestration.deletion import rows
from jobs_orchestration.deletion.report import Outcome
from jobs_orchestration.deletion.service import DeletionStores, delete_package, delete_packages
from jobs_orchestration.devstack.aws import DATASET_BUCKET, TIMESERIES_BUCKET
from jobs_orchestration_tests.support.faults import record_delete_calls, wrap_s3_clients
from jobs_orchestration_tests.support.platform_data import PlatformData, count_rows, keys_in, package_state
from jobs_orchestration_tests.support.queue import dead_letters
from jobs_orchestration_tests.support.runs import audit_rows, step_metadata


class SimulatedCrash(Exception):
    """Stands for the process dying between two steps."""


def count_s3_calls(client: Any, calls: Counter[str]) -> None:
    """Count every S3 operation the client sends (a call retried by the client counts once)."""

    def note(event_name: str, **_kwargs: Any) -> None:
        calls[event_name.rsplit(".", 1)[-1]] += 1

    client.meta.events.register("before-call.s3.*", note)


def _one_file_packages(data, count: int, prefix: str) -> tuple[int, list[int]]:
    org = data.organization()
    dataset = data.dataset(org)
    packages = []
    for index in range(count):
        package = data.package(dataset, org)
        data.file(package, DATASET_BUCKET, f"{prefix}/{index}.bin")
        packages.append(package)
    return org, packages


def test_a_hundred_one_file_packages_take_ten_times_fewer_s3_calls_than_one_pipeline_each(
    data, s3, local_aws, platform_db, delete_packages, monkeypatch
):
    # Before: each request deleted through a pipeline of its own, as the op did.
    org, alone = _one_file_packages(data, 100, "alone")
    before: Counter[str] = Counter()
    client = local_aws.client("s3")
    count_s3_calls(client, before)
    stores = DeletionStores(platform_db.engine, client, TIMESERIES_BUCKET, workers=4)
    for package in alone:
        assert delete_package(stores, package, org).outcome.value == "deleted"

    org, together = _one_file_packages(data, 100, "together")
    after: Counter[str] = Counter()
    wrap_s3_clients(monkeypatch, lambda client: count_s3_calls(client, after))

    result = delete_packages(*[(package, org) for package in together], from_queue=True)

    assert result.success
    assert after["DeleteObjects"] == 1
    assert before.total() >= 10 * after.total(), (before, after)
    assert keys_in(s3, DATASET_BUCKET) == set()
    assert {package_state(platform_db.engine, package) for package in together} == {"DELETED"}
    audits = [row for row in audit_rows(platform_db.engine) if row.resource_ids[0] in together]
    assert [row.resource_ids for row in audits] == [[package] for package in together]
    assert {
        (row.outcome, row.packages_deleted, row.files_deleted, row.objects_deleted) for row in audits
    } == {("deleted", 1, 1, 1)}
    metadata = step_metadata(result, DELETE_PACKAGES_OP)
    assert (metadata["packages_deleted"], metadata["files_deleted"], metadata["dead_lettered"]) == (
        100,
        100,
        0,
    )


def test_a_key_failing_for_good_fails_its_own_request_alone_which_is_dead_lettered(
    data, s3, local_aws, platform_db, delete_packages, monkeypatch
):
    org, packages = _one_file_packages(data, 3, "mixed")
    poison = packages[1]
    calls = record_delete_calls(
        monkeypatch, per_key_errors=lambda bucket, key: "AccessDenied" if key == "mixed/1.bin" else None
    )

    result = delete_packages(*[(package, org) for package in packages], from_queue=True)

    assert result.success
    assert [sorted(keys) for _bucket, keys in calls] == [["mixed/0.bin", "mixed/1.bin", "mixed/2.bin"]]
    assert keys_in(s3, DATASET_BUCKET) == {"mixed/1.bin"}
    states = [package_state(platform_db.engine, package) for package in packages]
    assert states == ["DELETED", "DELETING", "DELETED"]
    audits = {row.resource_ids[0]: row for row in audit_rows(platform_db.engine)}
    assert audits[poison].outcome == "failed"
    assert audits[poison].detail["errors"] == {f"s3://{DATASET_BUCKET}/mixed/1.bin": "AccessDenied: injected"}
    assert audits[poison].detail["remaining"] == [
        f"files/{_file_id(platform_db.engine, poison)}: s3://{DATASET_BUCKET}/mixed/1.bin"
    ]
    for package in (packages[0], packages[2]):
        assert (audits[package].outcome, audits[package].files_deleted) == ("deleted", 1)
        assert "errors" not in audits[package].detail
    (letter,) = dead_letters(local_aws)
    assert letter["reason"].startswith(f"package_id {poison}: failed: ")
    assert step_metadata(result, DELETE_PACKAGES_OP)["dead_lettered"] == 1


def test_rows_the_database_refuses_for_good_fail_their_own_request_alone(
    data, s3, local_aws, platform_db, delete_packages, monkeypatch
):
    org, packages = _one_file_packages(data, 3, "refused-rows")
    poison = packages[2]
    refused_row = _file_id(platform_db.engine, poison)
    real_forget = rows.forget

    def refuse_one_row(connection, owners):
        if any(owner.id == refused_row for owner in owners):
            connection.execute(sa.text("SELECT 1 / 0"))  # a real, permanent database error
        return real_forget(connection, owners)

    monkeypatch.setattr(rows, "forget", refuse_one_row)

    result = delete_packages(*[(package, org) for package in packages], from_queue=True)

    assert result.success
    assert keys_in(s3, DATASET_BUCKET) == set(), "the objects went first"
    assert count_rows(platform_db.engine, File) == 1, "the refused row stays, naming what was there"
    states = [package_state(platform_db.engine, package) for package in packages]
    assert states == ["DELETED", "DELETED", "DELETING"]
    audits = {row.resource_ids[0]: row for row in audit_rows(platform_db.engine)}
    assert audits[poison].outcome == "failed"
    assert audits[poison].detail["errors"] == {f"files/{refused_row}": "DivisionByZero: division by zero"}
    assert [audits[package].outcome for package in packages[:2]] == ["deleted", "deleted"]
    (letter,) = dead_letters(local_aws)
    assert letter["reason"].startswith(f"package_id {poison}: failed: ")


def test_a_package_inside_another_requests_tree_or_asked_twice_ends_as_if_deleted_one_after_the_other(
    data, s3, platform_db, delete_packages
):
    org = data.organization()
    dataset = data.dataset(org)
    folder = data.package(dataset, org, package_type=PackageType.COLLECTION)
    child = data.package(dataset, org, parent_id=folder)
    neighbour = data.package(dataset, org)
    data.file(folder, DATASET_BUCKET, "nested/folder.bin")
    data.file(child, DATASET_BUCKET, "nested/child.bin")
    data.file(neighbour, DATASET_BUCKET, "nested/neighbour.bin")

    result = delete_packages((child, org), (folder, org), (neighbour, org), (folder, org))

    assert result.success, step_metadata(result, DELETE_PACKAGES_OP)
    assert keys_in(s3, DATASET_BUCKET) == set()
    assert {package_state(platform_db.engine, package) for package in (folder, child, neighbour)} == {
        "DELETED"
    }
    requests = step_metadata(result, DELETE_PACKAGES_OP)["requests"]
    assert [(request["id"], request["outcome"]) for request in requests] == [
        (child, "already_deleted"),
        (folder, "deleted"),
        (neighbour, "deleted"),
        (folder, "already_deleted"),
    ]
    audits = {row.resource_ids[0]: row for row in audit_rows(platform_db.engine)}
    assert (audits[folder].outcome, audits[folder].packages_deleted, audits[folder].files_deleted) == (
        "deleted",
        2,
        2,
    )


def test_each_request_of_a_mixed_run_gets_the_figures_of_its_own_tree(data, s3, platform_db, delete_packages):
    org = data.organization()
    dataset = data.dataset(org)
    plain = data.package(dataset, org)
    data.file(plain, DATASET_BUCKET, "mix/plain.pdf", body=b"12345")
    slide = data.package(dataset, org, package_type=PackageType.SLIDE)
    data.prefix_file(slide, DATASET_BUCKET, "mix/tiles", count=4)
    series = data.timeseries(dataset, org, TIMESERIES_BUCKET)

    result = delete_packages((plain, org), (slide, org), (series.package_id, org))

    assert result.success
    assert keys_in(s3, DATASET_BUCKET) == set() and keys_in(s3, TIMESERIES_BUCKET) == set()
    audits = {row.resource_ids[0]: row for row in audit_rows(platform_db.engine)}
    figures = {
        package: (
            row.outcome,
            row.packages_deleted,
            row.files_deleted,
            row.objects_deleted,
            row.bytes_deleted,
        )
        for package, row in audits.items()
    }
    assert figures == {
        plain: ("deleted", 1, 1, 1, 5),
        slide: ("deleted", 1, 1, 4, 20),
        series.package_id: ("deleted", 1, 0, 4, 0),
    }


def test_a_crash_between_a_shared_batchs_objects_and_its_rows_is_finished_by_a_rerun(
    data, s3, platform_db, delete_packages, monkeypatch
):
    org, packages = _one_file_packages(data, 5, "crash")
    real_forget = rows.forget

    def crash_before_rows(connection, owners):
        raise SimulatedCrash("process died after DeleteObjects, before the rows went")

    monkeypatch.setattr(rows, "forget", crash_before_rows)
    crashed = delete_packages(*[(package, org) for package in packages])

    assert not crashed.success
    assert keys_in(s3, DATASET_BUCKET) == set(), "the objects went first"
    assert count_rows(platform_db.engine, File) == 5, "the rows that locate them are still there"
    assert {package_state(platform_db.engine, package) for package in packages} == {"DELETING"}

    monkeypatch.setattr(rows, "forget", real_forget)
    rerun = delete_packages(*[(package, org) for package in packages])

    assert rerun.success
    assert count_rows(platform_db.engine, File) == 0
    assert {package_state(platform_db.engine, package) for package in packages} == {"DELETED"}
    assert {row.outcome for row in audit_rows(platform_db.engine)[-5:]} == {"deleted"}


def _file_id(engine: sa.Engine, package_id: int) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.select(File.id).where(File.package_id == package_id)).scalar_one()


def test_a_run_of_package_deletions_shares_its_walk_on_sqlite_as_the_local_stack_runs_it(tmp_path, local_aws):
    """A folder with a child, a package inside that folder requested too, and a package of its own:
    one DeleteObjects call for the three trees, the nested request deleted after them."""
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    upgrade(url, ["platform"])
    engine = create_db_engine(url)
    s3 = local_aws.client("s3")
    data = PlatformData(engine, s3)
    org = data.organization()
    dataset = data.dataset(org)
    folder = data.package(dataset, org)
    child = data.package(dataset, org, parent_id=folder)
    single = data.package(dataset, org)
    for package in (folder, child, single):
        data.file(package, DATASET_BUCKET, f"sqlite/{package}.pdf")
    calls: list[int] = []
    s3.meta.events.register(
        "provide-client-params.s3.DeleteObjects",
        lambda params, **_: calls.append(len(params["Delete"]["Objects"])),
    )

    reports = delete_packages(
        DeletionStores(engine, s3, TIMESERIES_BUCKET), [(folder, org), (child, org), (single, org)]
    )

    assert [report.outcome for report in reports] == [
        Outcome.DELETED,
        Outcome.ALREADY_DELETED,
        Outcome.DELETED,
    ]
    assert calls == [3]
    assert keys_in(s3, DATASET_BUCKET) == set()
    assert [package_state(engine, package) for package in (folder, child, single)] == ["DELETED"] * 3
    engine.dispose()
