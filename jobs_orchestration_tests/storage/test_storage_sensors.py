"""The organizations sensor and the refresh after deletions."""

import dagster as dg

from jobs_orchestration.defs.storage.definitions import defs as storage_defs
from jobs_orchestration.defs.storage.partitions import organizations
from jobs_orchestration.defs.storage.refresh import changed_organizations_tag
from jobs_orchestration.defs.storage.sensors import (
    FIRST_REFRESHES_PER_TICK,
    organizations_sensor,
    storage_refresh_after_deletion_sensor,
)
from jobs_orchestration_tests.support.platform_tree import PlatformTree


def _tick(instance, platform_db):
    with dg.build_sensor_context(
        instance_ref=instance.get_ref(),
        resources={"platform_db": platform_db},
        definitions=dg.Definitions.merge(
            storage_defs, dg.Definitions(resources={"platform_db": platform_db})
        ),
    ) as context:
        return organizations_sensor.evaluate_tick(context)


def test_the_sensor_adds_new_organizations_removes_gone_ones_and_requests_first_refreshes(
    instance, platform_db
):
    tree = PlatformTree(platform_db.engine)
    kept, new = tree.organization(), tree.organization()
    instance.add_dynamic_partitions(organizations.name, [str(kept), "999999"])

    result = _tick(instance, platform_db)

    added, deleted = result.dynamic_partitions_requests
    assert isinstance(added, dg.AddDynamicPartitionsRequest)
    assert list(added.partition_keys) == [str(new)]
    assert isinstance(deleted, dg.DeleteDynamicPartitionsRequest)
    assert list(deleted.partition_keys) == ["999999"]
    (request,) = result.run_requests
    assert (request.job_name, request.partition_key) == ("storage_refresh_job", str(new))
    assert request.run_key == f"organization-added:{new}"
    assert request.tags["job_family"] == "storage"


def test_the_sensor_skips_when_partitions_match(instance, platform_db):
    organization = PlatformTree(platform_db.engine).organization()
    instance.add_dynamic_partitions(organizations.name, [str(organization)])

    result = _tick(instance, platform_db)

    assert not result.run_requests
    assert not result.dynamic_partitions_requests
    assert result.skip_message


def test_many_new_organizations_get_one_all_organizations_run(instance, platform_db):
    tree = PlatformTree(platform_db.engine)
    for _ in range(FIRST_REFRESHES_PER_TICK + 1):
        tree.organization()

    result = _tick(instance, platform_db)

    assert len(result.dynamic_partitions_requests[0].partition_keys) == FIRST_REFRESHES_PER_TICK + 1
    (request,) = result.run_requests
    assert request.job_name == "storage_totals_job"


@dg.op
def change_nothing() -> None:
    pass


@dg.job
def any_job() -> None:
    change_nothing()


def _after_run(instance, tags):
    result = any_job.execute_in_process(instance=instance, tags=tags)
    context = dg.build_run_status_sensor_context(
        sensor_name=storage_refresh_after_deletion_sensor.name,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(result.run_id),
        dagster_event=result.get_run_success_event(),
    )
    return storage_refresh_after_deletion_sensor(context)


def test_a_run_that_changed_organizations_gets_a_refresh_of_each(instance):
    requests = _after_run(instance, {**changed_organizations_tag({7, 3}), "trace_id": "abc"})

    assert [r.partition_key for r in requests] == ["3", "7"]
    run_id = requests[0].tags["deletion_run_id"]
    assert [r.run_key for r in requests] == [f"{run_id}:3", f"{run_id}:7"]
    assert all(r.job_name == "storage_refresh_job" and r.tags["trace_id"] == "abc" for r in requests)
    assert requests[0].run_config["ops"]["organization_storage"]["config"] == {
        "dry_run": False,
        "sources": [],
    }


def test_a_run_that_changed_no_organization_gets_none(instance):
    assert changed_organizations_tag(set()) == {}
    skipped = _after_run(instance, {"trace_id": "abc"})
    assert isinstance(skipped, dg.SkipReason) and "changed no organization" in skipped.skip_message
