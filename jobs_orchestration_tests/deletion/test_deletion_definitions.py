"""The deletion jobs as the code location serves them: names, tags, launchpad config, resources from
the environment."""

from __future__ import annotations

import dagster as dg
import pytest
from dagster._core.definitions.dependency import NodeHandle

from jobs_orchestration.defs.deletion.config import DELETE_DATASET_OP, DELETE_PACKAGES_OP
from jobs_orchestration.devstack.aws import TIMESERIES_BUCKET
from jobs_orchestration_tests.support.platform_data import PlatformData, keys_in, package_state


def _defs():
    # Imported late: the definitions read nothing at import, but the test's environment is set by then.
    from jobs_orchestration.definitions import defs

    return defs


def test_jobs_carry_the_deletion_family_tag_and_a_retry_policy():
    defs = _defs()
    for name, op_name in (
        ("delete_package_job", DELETE_PACKAGES_OP),
        ("delete_dataset_job", DELETE_DATASET_OP),
    ):
        job = defs.resolve_job_def(name)
        assert job.tags["job_family"] == "deletion"
        op = job.graph.node_named(op_name).definition
        policy = job.get_retry_policy_for_handle(NodeHandle(op_name, None))
        assert policy is not None and policy.max_retries >= 1 and policy.backoff is not None
        assert op.pool == "deletion"


def test_the_launchpad_starts_empty_and_a_launch_with_placeholder_ids_fails_naming_them(
    project_env, platform_db, instance
):
    defs = _defs()
    scaffolds = {
        # What the launchpad's "scaffold missing config" fills in: zeros for the ids.
        "delete_package_job": {
            DELETE_PACKAGES_OP: {"config": {"requests": [{"package_id": 0, "organization_id": 0}]}}
        },
        "delete_dataset_job": {DELETE_DATASET_OP: {"config": {"dataset_id": 0, "organization_id": 0}}},
    }
    for name, ops in scaffolds.items():
        job = defs.resolve_job_def(name)
        # No default config: launched as shown, the launchpad refuses it for the missing ids.
        assert not job.run_config_schema.config_type.fields["ops"].default_provided
        with pytest.raises(dg.DagsterInvalidConfigError, match="Missing required config entry"):
            dg.validate_run_config(job, {})

        result = job.execute_in_process(run_config={"ops": ops}, instance=instance, raise_on_error=False)

        assert not result.success
        (op_name,) = ops
        message = result.failure_data_for_node(op_name).error.message
        assert "organization_id is 0" in message and "ids are positive" in message
        # At once, not after the outage retries.
        assert not [event for event in result.all_events if event.event_type_value == "STEP_UP_FOR_RETRY"]
    empty = {DELETE_PACKAGES_OP: {"config": {"requests": []}}}
    result = defs.resolve_job_def("delete_package_job").execute_in_process(
        run_config={"ops": empty}, instance=instance, raise_on_error=False
    )
    assert "requests is empty" in result.failure_data_for_node(DELETE_PACKAGES_OP).error.message


def test_package_job_runs_with_the_resources_the_environment_configures(project_env, platform_db, instance):
    s3 = project_env.client("s3")
    data = PlatformData(platform_db.engine, s3)
    org = data.organization()
    series = data.timeseries(data.dataset(org), org, TIMESERIES_BUCKET)

    result = (
        _defs()
        .resolve_job_def("delete_package_job")
        .execute_in_process(
            run_config={
                "ops": {
                    DELETE_PACKAGES_OP: {
                        "config": {"requests": [{"package_id": series.package_id, "organization_id": org}]}
                    }
                }
            },
            instance=instance,
        )
    )

    assert result.success
    assert keys_in(s3, TIMESERIES_BUCKET) == set()
    assert package_state(platform_db.engine, series.package_id) == "DELETED"
