"""The organizations sensor and the refresh after deletions."""

import dagster as dg
import pytest

from jobs_orchestration.defs.storage.definitions import defs as storage_defs
from jobs_orchestration.defs.storage.partitions import organizations
from jobs_orchestration.defs.storage.sensors import (
    FIRST_REFRESHES_PER_TICK,
    organizations_sensor,
    storage_refresh_after_deletion_sensor,
)
from jobs_orchestration_tests.support import deletion_jobs
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


def _after_run(instance, job, run_config, tags=None):
    result = job.execute_in_process(run_config=run_config, instance=instance, tags=tags or {})
    context = dg.build_run_status_sensor_context(
        sensor_name=storage_refresh_after_deletion_sensor.name,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=result.get_run_success_event(),
    )
    return storage_refresh_after_deletion_sensor(context)


def _package_requests(*organization_ids, dry_run=False):
    return {
        "ops": {
            "delete_packages": {
                "config": {
                    "dry_run": dry_run,
                    "requests": [
                        {"package_id": 10 + i, "organization_id": organization_id}
                        for i, organization_id in enumerate(organization_ids)
                    ],
                }
            }
        }
    }


def test_a_package_deletion_run_requests_a_refresh_of_each_organization(instance):
    requests = _after_run(
        instance, deletion_jobs.delete_package_job, _package_requests(7, 3, 7), tags={"trace_id": "abc"}
    )

    assert [r.partition_key for r in requests] == ["3", "7"]
    run_id = requests[0].tags["deletion_run_id"]
    assert [r.run_key for r in requests] == [f"{run_id}:3", f"{run_id}:7"]
    assert all(r.job_name == "storage_refresh_job" and r.tags["trace_id"] == "abc" for r in requests)


def test_a_dataset_deletion_run_requests_a_refresh_of_its_organization(instance):
    config = {"ops": {"delete_dataset": {"config": {"dataset_id": 5, "organization_id": 12}}}}

    (request,) = _after_run(instance, deletion_jobs.delete_dataset_job, config)

    assert request.partition_key == "12"
    assert request.run_config["ops"]["organization_storage"]["config"] == {"dry_run": False, "sources": []}


@pytest.mark.parametrize(
    ("job", "config"),
    [
        (deletion_jobs.delete_package_job, _package_requests(7, dry_run=True)),
        (
            deletion_jobs.some_other_job,
            {"ops": {"delete_dataset": {"config": {"dataset_id": 5, "organization_id": 12}}}},
        ),
    ],
)
def test_dry_runs_and_other_jobs_request_nothing(instance, job, config):
    assert isinstance(_after_run(instance, job, config), dg.SkipReason)
