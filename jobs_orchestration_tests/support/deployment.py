"""The AWS deployment's processes on this machine: the container commands of the deployment, with the
deployment's own instance file (deploy/dagster.yaml) and workspace file, against the test PostgreSQL
and a moto server standing in for ECS, EC2, IAM, S3 and SQS."""

from __future__ import annotations

import contextlib
import json
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TypeVar

from jobs_orchestration.devstack.aws import LocalAws
from jobs_orchestration.devstack.stack import REPOSITORY_ROOT, signal_group

DEPLOY_DIRECTORY = REPOSITORY_ROOT / "deploy"

# The container commands of the deployment, as the stack's task definitions run them.
CODE_SERVER_COMMAND = (
    "dagster api grpc --host 0.0.0.0 --port 4000 --module-name jobs_orchestration.definitions "
    "--attribute defs --location-name jobs_orchestration"
)
WEBSERVER_COMMAND = "dagster-webserver --host 0.0.0.0 --port 3000 --workspace /app/deploy/workspace.yaml"

RUN_TASK_FAMILY = "jobs-orchestration-run"
RUN_CONTAINER_NAME = "run"
COMPUTE_LOG_BUCKET = "jobs-orchestration-compute-logs"
STOP_GRACE_SECONDS = 15

T = TypeVar("T")


def container_command(command: str, **options: object) -> list[str]:
    """A container command run from this machine's virtualenv, with the given options' values
    replaced (`host`, `port`, `workspace`): the rest is the deployment's, word for word."""
    words = shlex.split(command)
    words[0] = str(Path(sys.executable).with_name(words[0]))
    for option, value in options.items():
        words[words.index(f"--{option}") + 1] = str(value)
    return words


@contextlib.contextmanager
def running(
    name: str, command: list[str], environment: dict[str, str], log_directory: Path
) -> Iterator[subprocess.Popen]:
    """Run `command` in its own process group, its output in `<log_directory>/<name>.log`; on exit
    SIGTERM the group, then SIGKILL whatever is left of it."""
    log_path = log_directory / f"{name}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            cwd=log_directory,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield process
        finally:
            signal_group(process, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=STOP_GRACE_SECONDS)
            signal_group(process, signal.SIGKILL)
            process.wait()


def wait_until(
    what: str, check: Callable[[], T], process: subprocess.Popen, log_path: Path, timeout: float = 120
) -> T:
    """Poll `check` until it returns something true; fail naming `what` with the end of the process's
    log if the process exits or `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise AssertionError(f"{what}: the process exited with {process.returncode}\n{tail(log_path)}")
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s\n{tail(log_path)}")
        time.sleep(0.5)


def tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


@dataclass(frozen=True)
class MotoEcs:
    """What the stack creates in ECS for the run launcher, in moto: the cluster, the run task definition
    with its task role, and a task standing for the daemon's own (awsvpc, in a subnet and a security
    group), whose cluster and network the launcher gives the run tasks."""

    cluster_arn: str
    run_task_definition_arn: str
    run_task_role_arn: str
    daemon_task_arn: str
    subnet_id: str
    security_group_id: str


def create_ecs(aws: LocalAws) -> MotoEcs:
    ec2 = aws.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    # As in a CDK VPC; moto also needs it to give a task's network interface its DNS name.
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.40.1.0/24")["Subnet"]["SubnetId"]
    security_group_id = ec2.create_security_group(
        GroupName="jobs-orchestration-tasks", Description="daemon and run tasks", VpcId=vpc_id
    )["GroupId"]
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    run_task_role_arn = aws.client("iam").create_role(
        RoleName="jobs-orchestration-run", AssumeRolePolicyDocument=json.dumps(trust)
    )["Role"]["Arn"]

    ecs = aws.client("ecs")
    cluster_arn = ecs.create_cluster(clusterName="jobs-orchestration")["cluster"]["clusterArn"]
    fargate = {
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "512",
        "memory": "1024",
    }
    image = "jobs-orchestration:test"
    # moto sums the containers' memory to place a task: each container names its own.
    run_task_definition_arn = ecs.register_task_definition(
        family=RUN_TASK_FAMILY,
        taskRoleArn=run_task_role_arn,
        containerDefinitions=[
            {"name": RUN_CONTAINER_NAME, "image": image, "essential": True, "memory": 1024}
        ],
        **fargate,
    )["taskDefinition"]["taskDefinitionArn"]
    daemon_task_definition_arn = ecs.register_task_definition(
        family="jobs-orchestration-daemon",
        containerDefinitions=[{"name": "daemon", "image": image, "essential": True, "memory": 1024}],
        **fargate,
    )["taskDefinition"]["taskDefinitionArn"]
    (daemon_task,) = ecs.run_task(
        cluster=cluster_arn,
        taskDefinition=daemon_task_definition_arn,
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": [subnet_id],
                "securityGroups": [security_group_id],
                "assignPublicIp": "DISABLED",
            }
        },
    )["tasks"]
    return MotoEcs(
        cluster_arn,
        run_task_definition_arn,
        run_task_role_arn,
        daemon_task["taskArn"],
        subnet_id,
        security_group_id,
    )


@contextlib.contextmanager
def ecs_task_metadata_endpoint(cluster_arn: str, task_arn: str) -> Iterator[str]:
    """Serve what ECS serves inside a task at $ECS_CONTAINER_METADATA_URI_V4, as far as the run
    launcher reads it: the task's cluster and ARN (`<uri>/task`). Yields the URI."""
    task = json.dumps({"Cluster": cluster_arn, "TaskARN": task_arn}).encode()

    class TaskMetadata(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = self.path.rstrip("/").endswith("/task")
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            if found:
                self.wfile.write(task)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), TaskMetadata)
    thread = threading.Thread(target=server.serve_forever, name="ecs-task-metadata", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v4/daemon"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@contextlib.contextmanager
def ecs_tasks_run_until_stopped(endpoint_url: str) -> Iterator[None]:
    """moto moves a task one state towards STOPPED each time it is described; ECS keeps a task
    running until it stops or is stopped. Hold moto's tasks RUNNING until StopTask."""

    def post(path: str, body: dict) -> None:
        request = urllib.request.Request(
            f"{endpoint_url}/moto-api/state-manager/{path}", data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10):
            pass

    post(
        "set-transition", {"model_name": "ecs::task", "transition": {"progression": "manual", "times": 10**9}}
    )
    try:
        yield
    finally:
        post("unset-transition", {"model_name": "ecs::task"})
