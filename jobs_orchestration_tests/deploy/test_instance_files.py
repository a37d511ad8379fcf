"""The two Dagster instance files, checked as Dagster checks them when it loads an instance: the local
one (the top-level dagster.yaml) and the AWS deployment's (deploy/dagster.yaml), with the deployment's
workspace file."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster._config import process_config
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import dagster_instance_config, dagster_instance_config_schema
from dagster._core.workspace.config_schema import process_workspace_config
from dagster._serdes.config_class import class_from_code_pointer

from jobs_orchestration.devstack.stack import REPOSITORY_ROOT
from jobs_orchestration.snapshots import cleanup as snapshot_cleanup

DEPLOY_DIRECTORY = REPOSITORY_ROOT / "deploy"
LOCAL_INSTANCE = REPOSITORY_ROOT / "dagster.yaml"
DEPLOYMENT_INSTANCE = DEPLOY_DIRECTORY / "dagster.yaml"

# The variables the deployment contract lets deploy/dagster.yaml read.
DEPLOYMENT_VARIABLES = {
    "DAGSTER_PG_HOST": "db.internal",
    "DAGSTER_PG_PORT": "5432",
    "DAGSTER_PG_DB": "dagster",
    "DAGSTER_PG_USERNAME": "dagster",
    "DAGSTER_PG_PASSWORD": "not-a-real-password",
    "DAGSTER_COMPUTE_LOG_BUCKET": "compute-logs",
    "DAGSTER_COMPUTE_LOG_PREFIX": "dagster",
    "DAGSTER_RUN_TASK_DEFINITION": "jobs-orchestration-run",
}

# What the two instances hold the same; the rest (storage, launcher, compute logs, run monitoring)
# is where running on ECS differs from running here.
SHARED_SETTINGS = [
    "concurrency",
    "run_coordinator",
    "run_retries",
    "python_logs",
    "sensors",
    "schedules",
    "retention",
    "telemetry",
]


def validated_instance_config(path: Path) -> dict[str, Any]:
    """The file's config after Dagster's own checks of an instance's dagster.yaml: its shape and
    concurrency settings as the instance loads it, its environment variables resolved as the storage
    does, each configurable class (run launcher, run coordinator, compute log manager) against its own
    schema as the instance does when it first uses it. Raises DagsterInvalidConfigError."""
    config, _ = dagster_instance_config(str(path.parent), path.name)
    resolved = process_config(dagster_instance_config_schema(), config)
    if not resolved.success:
        raise DagsterInvalidConfigError(f"{path}", resolved.errors, config)
    for setting in ("run_launcher", "run_coordinator", "compute_logs"):
        if setting in config:
            block = config[setting]
            configurable = class_from_code_pointer(block["module"], block["class"])
            result = process_config(configurable.config_type(), block.get("config") or {})
            if not result.success:
                raise DagsterInvalidConfigError(f"{path}: {setting} config", result.errors, block)
    return dict(config)


def test_the_local_instance_is_valid_and_keeps_everything_on_this_machine():
    config = validated_instance_config(LOCAL_INSTANCE)
    # SQLite under DAGSTER_HOME, runs as subprocesses, compute logs on disk: Dagster's defaults.
    assert not {"storage", "run_launcher", "compute_logs"} & set(config)
    assert config["run_monitoring"]["enabled"]
    assert "{env:" not in LOCAL_INSTANCE.read_text()


def test_the_deployment_instance_is_valid_with_the_contract_environment(monkeypatch):
    for name, value in DEPLOYMENT_VARIABLES.items():
        monkeypatch.setenv(name, value)
    config = validated_instance_config(DEPLOYMENT_INSTANCE)
    raw = yaml.safe_load(DEPLOYMENT_INSTANCE.read_text())
    assert set(re.findall(r"\{env: (\w+)\}", DEPLOYMENT_INSTANCE.read_text())) == set(DEPLOYMENT_VARIABLES)
    # Secrets stay references: the instance ref handed to run tasks carries the names, not the values.
    assert raw["storage"]["postgres"]["postgres_db"]["password"] == {"env": "DAGSTER_PG_PASSWORD"}

    launcher = config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_aws.ecs", "EcsRunLauncher")
    assert launcher["config"]["task_definition"] == {"env": "DAGSTER_RUN_TASK_DEFINITION"}
    assert (launcher["config"]["container_name"], launcher["config"]["include_sidecars"]) == ("run", False)
    assert config["compute_logs"]["class"] == "S3ComputeLogManager"

    monitoring = config["run_monitoring"]
    assert monitoring["enabled"] and monitoring["max_resume_run_attempts"] == 0
    # Fargate places a task and pulls the image in 30-90 s: a start timeout of a few minutes.
    assert 180 <= monitoring["start_timeout_seconds"] <= 600


def test_a_missing_deployment_variable_is_named(monkeypatch):
    for name, value in DEPLOYMENT_VARIABLES.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DAGSTER_PG_PASSWORD")
    with pytest.raises(DagsterInvalidConfigError, match="DAGSTER_PG_PASSWORD"):
        validated_instance_config(DEPLOYMENT_INSTANCE)


def test_the_deployment_keeps_the_local_queue_retry_sensor_and_retention_settings():
    local = yaml.safe_load(LOCAL_INSTANCE.read_text())
    deployment = yaml.safe_load(DEPLOYMENT_INSTANCE.read_text())
    for setting in SHARED_SETTINGS:
        assert deployment[setting] == local[setting], setting
    for setting in ("cancel_timeout_seconds", "max_runtime_seconds", "poll_interval_seconds"):
        assert deployment["run_monitoring"][setting] == local["run_monitoring"][setting], setting


def test_the_deployment_workspace_loads_the_code_server(monkeypatch):
    monkeypatch.setenv("DAGSTER_CODE_SERVER_HOST", "code.jobs-orchestration.local")
    workspace = yaml.safe_load((DEPLOY_DIRECTORY / "workspace.yaml").read_text())
    result = process_workspace_config(workspace)
    assert result.success, result.errors
    (entry,) = workspace["load_from"]
    assert entry["grpc_server"] == {
        "host": {"env": "DAGSTER_CODE_SERVER_HOST"},
        "port": 4000,
        "location_name": "jobs_orchestration",
    }


@pytest.mark.slow
def test_definitions_validate_from_the_repository_root_without_dagster_home():
    environment = {name: value for name, value in os.environ.items() if not name.startswith("DAGSTER_")}
    completed = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "definitions", "validate"],
        cwd=REPOSITORY_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "All code locations passed validation" in completed.stdout + completed.stderr


@dg.op
def warn_through_the_cleanup_logger() -> None:
    snapshot_cleanup.log.warning("snapshot file not deleted in a test run")


@dg.job
def module_logging_job() -> None:
    warn_through_the_cleanup_logger()


@pytest.mark.parametrize("path", [LOCAL_INSTANCE, DEPLOYMENT_INSTANCE], ids=["local", "deployment"])
def test_the_project_module_loggers_reach_the_run_event_log(path):
    python_logs = yaml.safe_load(path.read_text())["python_logs"]
    with dg.instance_for_test(overrides={"python_logs": python_logs}) as instance:
        result = module_logging_job.execute_in_process(instance=instance)
        messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert "snapshot file not deleted in a test run" in messages
