from pathlib import Path

import dagster as dg
import yaml

from jobs_orchestration.definitions import defs

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent


def test_definitions_load():
    dg.Definitions.validate_loadable(defs)


def test_every_sensor_finds_its_resources():
    # validate_loadable does not look at what sensors need.
    repository = defs.get_repository_def()
    for sensor in repository.sensor_defs:
        assert sensor.required_resource_keys <= set(defs.resources), sensor.name


def test_workspace_yaml_names_the_definitions():
    workspace = yaml.safe_load((REPOSITORY_ROOT / "workspace.yaml").read_text())
    target = workspace["load_from"][0]["python_module"]
    assert (target["module_name"], target["attribute"]) == ("jobs_orchestration.definitions", "defs")


MESSAGE_JOBS = ["delete_package_job", "delete_dataset_job", "dataset_changelog_job", "changelog_outbox_job"]


def test_message_jobs_run_in_one_process_and_retry_whole_runs():
    # A worker killed after the last step succeeded leaves no failed step: only a whole-run retry
    # starts anything then.
    for name in MESSAGE_JOBS:
        job = defs.resolve_job_def(name)
        assert job.executor_def.name == "in_process", name
        assert job.tags["dagster/retry_strategy"] == "ALL_STEPS", name


def test_every_job_runs_in_one_process():
    # The storage refreshes, the snapshot cleanup and assets materialized from the UI too: a step
    # subprocess would cost each of them a Python start-up per asset.
    jobs = defs.get_repository_def().get_all_jobs()
    assert {"storage_refresh_job", "storage_totals_job", "snapshot_cleanup_job"} <= {job.name for job in jobs}
    for job in jobs:
        assert job.executor_def.name == "in_process", job.name
