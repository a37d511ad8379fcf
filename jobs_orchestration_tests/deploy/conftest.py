from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from dagster._grpc.client import DagsterGrpcClient
from sqlalchemy.engine import make_url

from jobs_orchestration.devstack.aws import LocalAws, provision, reset_moto
from jobs_orchestration.devstack.stack import free_port, stop_code_server
from jobs_orchestration_tests.support.deployment import (
    CODE_SERVER_COMMAND,
    COMPUTE_LOG_BUCKET,
    DEPLOY_DIRECTORY,
    RUN_TASK_FAMILY,
    MotoEcs,
    container_command,
    create_ecs,
    ecs_task_metadata_endpoint,
    ecs_tasks_run_until_stopped,
    running,
    wait_until,
)
from jobs_orchestration_tests.support.postgres import temporary_database


@dataclass(frozen=True)
class Deployment:
    environment: dict[str, str]
    """What the stack gives every container, pointing here at the test's PostgreSQL and moto."""
    home: Path
    """DAGSTER_HOME, holding deploy/dagster.yaml as dagster.yaml, unchanged."""
    workspace: Path
    """deploy/workspace.yaml with the test code server's port."""
    code_server_port: int
    log_directory: Path
    aws: LocalAws
    ecs: MotoEcs


@pytest.fixture(scope="module")
def deployment(
    moto_endpoint: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """The deployment's code server running with the containers' environment, and everything the
    instance file needs: a throw-away PostgreSQL database for Dagster's storage, the compute log bucket,
    the ECS cluster with the run task definition, and the ECS task metadata endpoint of the daemon's
    task. Everything is stopped and removed afterwards."""
    reset_moto(moto_endpoint)
    aws = provision(moto_endpoint)
    aws.client("s3").create_bucket(Bucket=COMPUTE_LOG_BUCKET)
    ecs = create_ecs(aws)

    root = tmp_path_factory.mktemp("deployment")
    home = root / "home"
    home.mkdir()
    shutil.copyfile(DEPLOY_DIRECTORY / "dagster.yaml", home / "dagster.yaml")
    port = free_port()
    workspace_config = yaml.safe_load((DEPLOY_DIRECTORY / "workspace.yaml").read_text())
    workspace_config["load_from"][0]["grpc_server"]["port"] = port
    workspace = root / "workspace.yaml"
    workspace.write_text(yaml.safe_dump(workspace_config))

    with ExitStack() as resources:
        instance_database = make_url(resources.enter_context(temporary_database("dagster_deploy")))
        metadata_uri = resources.enter_context(
            ecs_task_metadata_endpoint(ecs.cluster_arn, ecs.daemon_task_arn)
        )
        resources.enter_context(ecs_tasks_run_until_stopped(moto_endpoint))
        environment = {
            **os.environ,
            **aws.environment(),
            "DAGSTER_HOME": str(home),
            "DAGSTER_PG_HOST": str(instance_database.host),
            "DAGSTER_PG_PORT": str(instance_database.port or 5432),
            "DAGSTER_PG_DB": str(instance_database.database),
            "DAGSTER_PG_USERNAME": str(instance_database.username),
            # The test server trusts local connections; the value only has to be there.
            "DAGSTER_PG_PASSWORD": instance_database.password or "not-checked-by-trust-auth",
            "DAGSTER_COMPUTE_LOG_BUCKET": COMPUTE_LOG_BUCKET,
            "DAGSTER_COMPUTE_LOG_PREFIX": "compute-logs",
            "DAGSTER_RUN_TASK_DEFINITION": RUN_TASK_FAMILY,
            "DAGSTER_RUN_TASK_ROLE_ARN": ecs.run_task_role_arn,
            "DAGSTER_ECS_CLUSTER": ecs.cluster_arn,
            "DAGSTER_CODE_SERVER_HOST": "127.0.0.1",
            "ECS_CONTAINER_METADATA_URI_V4": metadata_uri,
            "JOBS_DATABASE_URL": database_url,
            "SNAPSHOT_STORAGE_URL": (root / "snapshots").as_uri(),
        }
        environment.pop("EMAIL_PARSER_DATABASE_URL", None)
        code_server = resources.enter_context(
            running(
                "code-server",
                container_command(CODE_SERVER_COMMAND, host="127.0.0.1", port=port),
                environment,
                root,
            )
        )
        client = DagsterGrpcClient(port=port, host="127.0.0.1")
        wait_until(
            "the code server answers its health check",
            lambda: _serving(client, port),
            code_server,
            root / "code-server.log",
        )
        yield Deployment(environment, home, workspace, port, root, aws, ecs)
        stop_code_server(code_server, port)


def _serving(client: DagsterGrpcClient, port: int) -> bool:
    # The health check prints every refused connection: ask it only once the port listens.
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) != 0:
            return False
    return client.health_check_query() == "SERVING"
