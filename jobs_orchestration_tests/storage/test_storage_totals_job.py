"""Refreshing every organization in batched runs, each organization on its own partition."""

import random

import dagster as dg

from jobs_orchestration.defs.storage.checks import MATCHES_DATASETS, NOT_NEGATIVE
from jobs_orchestration.defs.storage.jobs import nightly_storage_totals, storage_totals_job
from jobs_orchestration.defs.storage.partitions import organizations
from jobs_orchestration.defs.storage.refresh import storage_refresh_run_request
from jobs_orchestration_tests.support.platform_tree import cached_sizes
from jobs_orchestration_tests.support.random_platform import generate, load


def _partition_metadata(instance, asset: str) -> dict[str, dict]:
    records = instance.fetch_materializations(dg.AssetKey(asset), limit=100).records
    return {r.asset_materialization.partition: r.asset_materialization.metadata for r in records}


def test_one_run_records_each_organization_on_its_own_partition(instance, platform_db):
    platform = generate(random.Random(7), organizations=5, datasets_per_organization=(1, 3))
    load(platform_db.engine, platform)
    expected = platform.expected()
    request = storage_refresh_run_request(None, tags={"trace_id": "t-1"})
    run_config = {"ops": {"refresh_all_organizations": {"config": {"organizations_per_batch": 2}}}}
    assert dg.validate_run_config(storage_totals_job, request.run_config)

    result = storage_totals_job.execute_in_process(
        run_config=run_config, instance=instance, resources={"platform_db": platform_db}, tags=request.tags
    )

    assert result.success
    assert cached_sizes(platform_db.engine) == expected
    organization_metadata = _partition_metadata(instance, "organization_storage")
    assert {int(key): m["total_bytes"].value for key, m in organization_metadata.items()} == expected[
        "organization"
    ]
    assert {m["organizations_in_batch"].value for m in organization_metadata.values()} == {1, 2}
    for asset in ("package_storage", "dataset_storage"):
        assert set(_partition_metadata(instance, asset)) == {str(o) for o in platform.organizations}
    assert set(instance.get_dynamic_partitions(organizations.name)) == {
        str(o) for o in platform.organizations
    }
    assert result.dagster_run.tags["job_family"] == "storage"


def test_the_checks_of_every_refreshed_organization_are_recorded_on_its_partition(instance, platform_db):
    platform = generate(random.Random(9), organizations=4, datasets_per_organization=(1, 2))
    load(platform_db.engine, platform)
    run_config = {"ops": {"refresh_all_organizations": {"config": {"organizations_per_batch": 3}}}}

    result = storage_totals_job.execute_in_process(
        run_config=run_config, instance=instance, resources={"platform_db": platform_db}
    )

    assert result.success
    keys = {str(o) for o in platform.organizations}
    for check_name in (MATCHES_DATASETS, NOT_NEGATIVE):
        records = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(dg.AssetKey("organization_storage"), check_name), limit=100
        )
        by_partition = {record.partition: record for record in records}
        assert set(by_partition) == keys, check_name
        assert {record.run_id for record in records} == {result.run_id}
        assert {record.status.value for record in records} == {"SUCCEEDED"}
    # The partition's materialization names the organization and its size in readable units.
    for key, metadata in _partition_metadata(instance, "organization_storage").items():
        assert metadata["organization_name"].value == f"org {key}"
        assert metadata["total_size"].value.endswith(("B", "KiB", "MiB", "GiB"))


def test_a_dry_run_of_every_organization_writes_nothing(instance, platform_db):
    platform = generate(random.Random(8), organizations=3, datasets_per_organization=(1, 2))
    load(platform_db.engine, platform)

    result = storage_totals_job.execute_in_process(
        run_config=storage_refresh_run_request(None, dry_run=True).run_config,
        instance=instance,
        resources={"platform_db": platform_db},
    )

    assert result.success
    assert cached_sizes(platform_db.engine) == {"package": {}, "dataset": {}, "organization": {}}
    assert instance.get_latest_materialization_event(dg.AssetKey("organization_storage")) is None
    observed = [e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
    assert len(observed) == 3 * len(platform.organizations)
    # The cache did not change: nothing to check.
    assert result.get_asset_check_evaluations() == []


def test_the_nightly_schedule_is_off_by_default_and_targets_the_job():
    assert nightly_storage_totals.default_status == dg.DefaultScheduleStatus.STOPPED
    assert nightly_storage_totals.job_name == "storage_totals_job"
    assert nightly_storage_totals.execution_timezone == "UTC"
