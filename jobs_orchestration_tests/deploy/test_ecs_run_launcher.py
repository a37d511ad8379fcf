"""The daemon's work on the deployment's instance (deploy/dagster.yaml unchanged, Dagster's storage on
PostgreSQL), driven one iteration at a time: the real `sqs_jobs_sensor`, evaluated by the code
server, turns a job message into a queued run; the run queue launches it as an ECS task through
EcsRunLauncher; run monitoring follows the task; the run retry starts a new run on a new task.

What moto leaves unproven: moto's ECS starts no container, so the run never executes on ECS. Nothing
here shows that the image starts, that `dagster api execute_run` succeeds in it, that the task role
grants what the ops need, that the network reaches PostgreSQL and the AWS endpoints, or that Fargate
accepts the CPU and memory pair: the test reports the worker's start itself (the RUN_START event the
run worker writes), and it marks the stopped container's exit code 137 on the launcher's DescribeTasks
answer, as ECS reports a container killed by SIGKILL (out of memory, say), because moto reports 0 for
every container. IAM policies are not evaluated by moto either.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest
from dagster._core.launcher import WorkerStatus
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget
from dagster._daemon.auto_run_reexecution.event_log_consumer import EventLogConsumerDaemon
from dagster._daemon.monitoring.run_monitoring import execute_run_monitoring_iteration
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon
from dagster._daemon.sensor import execute_sensor_iteration
from dagster._grpc.types import ExecuteRunArgs
from dagster._serdes import deserialize_value

from jobs_orchestration_tests.deploy.conftest import Deployment
from jobs_orchestration_tests.support import job_messages
from jobs_orchestration_tests.support.deployment import RUN_CONTAINER_NAME
from jobs_orchestration_tests.support.queue import send

JOB = "dataset_changelog_job"
ECS_OVERRIDES_LIMIT = 8192
"""RunTask refuses overrides longer than this many characters of JSON."""
KILLED_EXIT_CODE = 137
STOP_REASON = "OutOfMemoryError: Container killed due to memory usage"
log = logging.getLogger(__name__)


@pytest.fixture
def daemon_context(
    deployment: Deployment, clean_database: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[WorkspaceProcessContext]:
    """The daemon's view: the deployment's instance, loaded from its DAGSTER_HOME with the containers'
    environment, and the deployment's workspace, which loads the location from the code server."""
    for name, value in deployment.environment.items():
        monkeypatch.setenv(name, value)
    with (
        dg.DagsterInstance.from_config(str(deployment.home)) as instance,
        WorkspaceProcessContext(instance, WorkspaceFileTarget(paths=[str(deployment.workspace)])) as context,
    ):
        yield context


class EcsCalls:
    """The run launcher's ECS and Secrets Manager requests, recorded through botocore's event hooks on
    its own clients. Stopped run tasks read back with the exit code ECS would give."""

    def __init__(self, launcher: Any) -> None:
        self.run_task: list[dict[str, Any]] = []
        self.secrets_manager: list[str] = []
        # The request's parameters as the launcher passed them, before botocore serializes them.
        launcher.ecs.meta.events.register("before-parameter-build.ecs.RunTask", self._record_run_task)
        launcher.ecs.meta.events.register("after-call.ecs.DescribeTasks", self._killed_if_stopped)
        launcher.secrets_manager.meta.events.register("before-call.secrets-manager", self._record_secrets)

    def _record_run_task(self, params: dict[str, Any], **kwargs: Any) -> None:
        self.run_task.append(params)

    def _record_secrets(self, model: Any, **kwargs: Any) -> None:
        self.secrets_manager.append(model.name)

    def _killed_if_stopped(self, parsed: dict[str, Any], **kwargs: Any) -> None:
        for task in parsed.get("tasks", []):
            if task.get("lastStatus") == "STOPPED":
                for container in task.get("containers", []):
                    container["exitCode"] = KILLED_EXIT_CODE


def tick_sensors(context: WorkspaceProcessContext) -> None:
    list(execute_sensor_iteration(context, log, threadpool_executor=None, submit_threadpool_executor=None))


def dequeue(context: WorkspaceProcessContext) -> None:
    with QueuedRunCoordinatorDaemon(interval_seconds=1) as daemon:
        list(daemon.run_iteration(context))


def runs_of(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    return list(reversed(instance.get_runs(filters=dg.RunsFilter(job_name=JOB))))


def report_worker_start(instance: dg.DagsterInstance, run: dg.DagsterRun) -> None:
    """What the run worker writes first when its container starts."""
    event = dg.DagsterEvent(
        event_type_value=dg.DagsterEventType.RUN_START.value,
        job_name=run.job_name,
        message=f'Started execution of run for "{run.job_name}".',
    )
    instance.report_dagster_event(event, run_id=run.run_id)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_job_message_becomes_an_ecs_task_whose_stop_fails_and_retries_the_run(
    deployment: Deployment, daemon_context: WorkspaceProcessContext
):
    instance = daemon_context.instance
    ecs = deployment.aws.client("ecs")
    calls = EcsCalls(instance.run_launcher)
    retries = EventLogConsumerDaemon()
    list(retries.run_iteration(daemon_context))  # its cursor starts at the end of the event log

    send(deployment.aws, job_messages.changelog(dataset_id=13, organization_id=7, id="producer-job-1"))
    tick_sensors(daemon_context)
    (run,) = runs_of(instance)
    assert run.status == dg.DagsterRunStatus.QUEUED
    assert run.tags["producer_job_ids"] == "producer-job-1"
    # A job's or a launch's tags size its runs' tasks.
    instance.add_run_tags(run.run_id, {"ecs/cpu": "1024", "ecs/memory": "4096"})

    dequeue(daemon_context)
    (request,) = calls.run_task
    run = instance.get_run_by_id(run.run_id)
    assert run.status == dg.DagsterRunStatus.STARTING
    assert calls.secrets_manager == []

    # The run task definition, in the cluster and network of the daemon's own task.
    assert request["taskDefinition"] == deployment.ecs.run_task_definition_arn
    assert request["cluster"] == deployment.ecs.cluster_arn
    assert request["launchType"] == "FARGATE"
    assert request["networkConfiguration"] == {
        "awsvpcConfiguration": {
            "subnets": [deployment.ecs.subnet_id],
            "securityGroups": [deployment.ecs.security_group_id],
            "assignPublicIp": "DISABLED",
        }
    }
    overrides = request["overrides"]
    assert len(json.dumps(overrides)) < ECS_OVERRIDES_LIMIT
    assert "taskRoleArn" not in overrides  # the run task definition's role applies
    assert (overrides["cpu"], overrides["memory"]) == ("1024", "4096")
    (container,) = overrides["containerOverrides"]
    assert (container["name"], container["cpu"], container["memory"]) == (RUN_CONTAINER_NAME, 1024, 4096)
    assert container["command"][:3] == ["dagster", "api", "execute_run"]
    arguments = deserialize_value(container["command"][3], ExecuteRunArgs)
    assert arguments.run_id == run.run_id
    assert arguments.job_origin.job_name == JOB
    assert arguments.job_origin.repository_origin.code_pointer.module == "jobs_orchestration.definitions"
    assert deployment.environment["DAGSTER_PG_PASSWORD"] not in container["command"][3]
    tags = {tag["key"]: tag["value"] for tag in request["tags"]}
    assert tags == {"dagster/run_id": run.run_id, "dagster/job_name": JOB, "job_family": "changelog"}

    # ECS holds the task as requested, and the run names it.
    (task,) = ecs.describe_tasks(cluster=deployment.ecs.cluster_arn, tasks=[run.tags["ecs/task_arn"]])[
        "tasks"
    ]
    assert task["taskDefinitionArn"] == deployment.ecs.run_task_definition_arn
    assert task["overrides"]["containerOverrides"][0]["command"] == container["command"]
    assert run.tags["ecs/cluster"] == deployment.ecs.cluster_arn
    task_definition = ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])["taskDefinition"]
    assert task_definition["taskRoleArn"] == deployment.ecs.run_task_role_arn

    report_worker_start(instance, run)
    list(execute_run_monitoring_iteration(daemon_context, log))
    run = instance.get_run_by_id(run.run_id)
    assert run.status == dg.DagsterRunStatus.STARTED
    assert instance.run_launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING

    ecs.stop_task(cluster=deployment.ecs.cluster_arn, task=task["taskArn"], reason=STOP_REASON)
    list(execute_run_monitoring_iteration(daemon_context, log))
    run = instance.get_run_by_id(run.run_id)
    assert run.status == dg.DagsterRunStatus.FAILURE
    (failure,) = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    assert task["taskArn"] in failure.message
    assert f"Stop reason: {STOP_REASON}" in failure.message
    assert f"Container '{RUN_CONTAINER_NAME}' failed - exit code {KILLED_EXIT_CODE}" in failure.message

    # run_retries: a new run of the whole job, launched as a new task.
    list(retries.run_iteration(daemon_context))
    (retry,) = [other for other in runs_of(instance) if other.run_id != run.run_id]
    assert retry.tags["dagster/parent_run_id"] == run.run_id
    assert retry.status == dg.DagsterRunStatus.QUEUED
    dequeue(daemon_context)
    assert len(calls.run_task) == 2
    retry_overrides = calls.run_task[1]["overrides"]
    retry_command = retry_overrides["containerOverrides"][0]["command"]
    # The retry keeps its parent's tags, and so the size of its task.
    assert (retry_overrides["cpu"], retry_overrides["memory"]) == ("1024", "4096")
    assert deserialize_value(retry_command[3], ExecuteRunArgs).run_id == retry.run_id
    retry = instance.get_run_by_id(retry.run_id)
    assert retry.status == dg.DagsterRunStatus.STARTING
    assert retry.tags["ecs/task_arn"] != task["taskArn"]
