"""The storage assets materialized per organization partition, on a real instance and PostgreSQL."""

import dagster as dg
import pytest

from jobs_orchestration.defs.storage.assets import storage_assets
from jobs_orchestration.defs.storage.checks import storage_check_evaluations, storage_checks
from jobs_orchestration.defs.storage.config import StorageTotalsConfig
from jobs_orchestration.defs.storage.partitions import organizations
from jobs_orchestration_tests.support.platform_tree import PlatformTree, cached_sizes


@pytest.fixture
def tree(platform_db) -> PlatformTree:
    return PlatformTree(platform_db.engine)


def _materialize(instance, platform_db, organization_id, *, dry_run=False, raise_on_error=True):
    return dg.materialize(
        [*storage_assets, *storage_checks],
        partition_key=str(organization_id),
        instance=instance,
        resources={"platform_db": platform_db},
        run_config=dg.RunConfig(
            ops={asset.key.path[-1]: StorageTotalsConfig(dry_run=dry_run) for asset in storage_assets}
        ),
        raise_on_error=raise_on_error,
    )


def test_materializing_a_partition_writes_and_reports_each_level(instance, platform_db, tree):
    organization = tree.organization()
    dataset = tree.dataset(organization)
    top = tree.collection(dataset)
    tree.package(dataset, parent_id=top, files=(10,))
    middle = tree.collection(dataset, parent_id=top)
    tree.package(dataset, parent_id=middle, files=(900, 3000))
    instance.add_dynamic_partitions(organizations.name, [str(organization)])

    result = _materialize(instance, platform_db, organization)

    assert result.success
    assert cached_sizes(platform_db.engine)["organization"] == {organization: 3910}
    package = result.asset_materializations_for_node("package_storage")[0]
    assert package.partition == str(organization)
    assert package.metadata["total_bytes"] == dg.IntMetadataValue(3910)
    assert package.metadata["files"] == dg.IntMetadataValue(3)
    assert package.metadata["packages"] == dg.IntMetadataValue(4)
    assert package.metadata["rows_changed"] == dg.IntMetadataValue(4)
    dataset_event = result.asset_materializations_for_node("dataset_storage")[0]
    assert dataset_event.metadata["datasets"] == dg.IntMetadataValue(1)
    recorded = instance.get_latest_materialization_event(dg.AssetKey("organization_storage"))
    metadata = recorded.asset_materialization.metadata
    assert recorded.asset_materialization.partition == str(organization)
    assert metadata["total_bytes"] == dg.IntMetadataValue(3910)
    assert metadata["total_size"] == dg.TextMetadataValue("3.8 KiB")
    # Dynamic partitions have no metadata of their own: the organization's name is on its events and run.
    assert metadata["organization_name"] == dg.TextMetadataValue(f"org {organization}")
    assert instance.get_run_by_id(result.run_id).tags["organization_name"] == f"org {organization}"
    assert isinstance(metadata["duration_seconds"], dg.FloatMetadataValue)
    assert all(evaluation.passed for evaluation in result.get_asset_check_evaluations())


def test_dry_run_observes_every_level_and_writes_nothing(instance, platform_db, tree):
    organization = tree.organization()
    tree.package(tree.dataset(organization), files=(123,))
    instance.add_dynamic_partitions(organizations.name, [str(organization)])

    result = _materialize(instance, platform_db, organization, dry_run=True)

    assert result.success
    assert cached_sizes(platform_db.engine) == {"package": {}, "dataset": {}, "organization": {}}
    assert instance.get_latest_materialization_event(dg.AssetKey("organization_storage")) is None
    observations = {
        event.asset_observation_data.asset_observation.asset_key.path[-1]: (
            event.asset_observation_data.asset_observation.metadata
        )
        for event in result.all_events
        if event.event_type_value == "ASSET_OBSERVATION"
    }
    assert set(observations) == {"package_storage", "dataset_storage", "organization_storage"}
    assert observations["organization_storage"]["total_bytes"] == dg.IntMetadataValue(123)
    assert observations["organization_storage"]["rows_changed"] == dg.IntMetadataValue(1)
    assert observations["package_storage"]["dry_run"] == dg.BoolMetadataValue(True)


def test_an_unknown_organization_fails_the_run_with_a_clear_error(instance, platform_db):
    instance.add_dynamic_partitions(organizations.name, ["424242"])

    result = _materialize(instance, platform_db, 424242, raise_on_error=False)

    assert not result.success
    failure = next(event for event in result.all_events if event.event_type_value == "STEP_FAILURE")
    assert "organization_id 424242: no such organization" in str(failure.step_failure_data.error)


def test_a_partition_key_that_is_not_an_id_is_refused(instance, platform_db):
    instance.add_dynamic_partitions(organizations.name, ["acme"])

    result = _materialize(instance, platform_db, "acme", raise_on_error=False)

    failure = next(event for event in result.all_events if event.event_type_value == "STEP_FAILURE")
    assert "partition key 'acme': not an organization id" in str(failure.step_failure_data.error)


def test_checks_fail_on_a_mismatched_organization_and_a_negative_size(instance, platform_db, tree):
    organization = tree.organization()
    tree.package(tree.dataset(organization), files=(50,))
    healthy = tree.organization()
    tree.package(tree.dataset(healthy), files=(7,))
    instance.add_dynamic_partitions(organizations.name, [str(organization), str(healthy)])
    for key in (organization, healthy):
        _materialize(instance, platform_db, key)
    with platform_db.begin() as connection:
        connection.exec_driver_sql(
            f"UPDATE organization_storage SET size = 49 WHERE organization_id = {organization}"
        )
        connection.exec_driver_sql(
            f"UPDATE package_storage SET size = -1 WHERE organization_id = {organization}"
        )

    # What both jobs record (this Dagster version cannot run partitioned checks without their asset).
    evaluations = storage_check_evaluations(platform_db, [organization, healthy])

    def evaluate(key: int) -> dict[str, dg.AssetCheckEvaluation]:
        return {e.check_name: e for e in evaluations if e.partition == str(key)}

    broken = evaluate(organization)
    assert not broken["organization_storage_matches_its_datasets"].passed
    assert broken["organization_storage_matches_its_datasets"].partition == str(organization)
    assert broken["organization_storage_matches_its_datasets"].metadata["cached_size"] == dg.IntMetadataValue(
        49
    )
    assert broken["organization_storage_matches_its_datasets"].metadata[
        "datasets_size"
    ] == dg.IntMetadataValue(50)
    assert not broken["storage_sizes_are_not_negative"].passed
    assert broken["storage_sizes_are_not_negative"].metadata["negative_rows"] == dg.IntMetadataValue(1)
    # Each organization is checked on its own: the other one passes.
    assert all(evaluation.passed for evaluation in evaluate(healthy).values())


def test_a_backfill_over_several_organizations_records_each_ones_own_figures(instance, platform_db, tree):
    # No backfill policy: a backfill is one run per partition, so no run stamps its figures on others.
    assert all(asset.backfill_policy is None for asset in storage_assets)
    sizes = {}
    for size in (5, 70, 900):
        organization = tree.organization()
        tree.package(tree.dataset(organization), files=(size,))
        sizes[str(organization)] = size
    instance.add_dynamic_partitions(organizations.name, list(sizes))

    for key in sizes:
        assert _materialize(instance, platform_db, key).success

    records = instance.fetch_materializations(dg.AssetKey("organization_storage"), limit=10).records
    recorded = {r.asset_materialization.partition: r.asset_materialization.metadata for r in records}
    assert {key: metadata["total_bytes"].value for key, metadata in recorded.items()} == sizes
