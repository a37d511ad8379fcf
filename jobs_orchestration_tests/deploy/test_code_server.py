"""The code server and the webserver of the deployment, run with their container commands, the
deployment's instance file and workspace file, from the installed virtualenv."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from jobs_orchestration.devstack.stack import free_port
from jobs_orchestration_tests.deploy.conftest import Deployment
from jobs_orchestration_tests.support.deployment import (
    WEBSERVER_COMMAND,
    container_command,
    running,
    wait_until,
)

DAGSTER = str(Path(sys.executable).with_name("dagster"))
LOCATION = "jobs_orchestration"
JOBS = {
    "delete_package_job",
    "delete_dataset_job",
    "dataset_changelog_job",
    "changelog_outbox_job",
    "storage_refresh_job",
    "storage_totals_job",
    "snapshot_cleanup_job",
}

WORKSPACE_QUERY = """
{
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on RepositoryLocation { repositories { name jobs { name } } }
          ... on PythonError { message }
        }
      }
    }
  }
  instance { runLauncher { name } runQueuingSupported }
}
"""


def health_check(port: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [DAGSTER, "api", "grpc-health-check", "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow
def test_the_code_server_answers_its_health_check(deployment: Deployment):
    answer = health_check(deployment.code_server_port)
    assert answer.returncode == 0, answer.stdout + answer.stderr
    assert "gRPC connection successful" in answer.stdout
    # The same check against a port nobody serves fails: the answer above is the server's.
    assert health_check(free_port()).returncode != 0


def graphql(url: str, query: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.loads(response.read())
    assert not answer.get("errors"), answer["errors"]
    return answer["data"]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/server_info", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_webserver_loads_the_location_from_the_code_server(deployment: Deployment):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = container_command(
        WEBSERVER_COMMAND, host="127.0.0.1", port=port, workspace=deployment.workspace
    )
    log_path = deployment.log_directory / "webserver.log"
    with running("webserver", command, deployment.environment, deployment.log_directory) as webserver:
        wait_until("the webserver answers", lambda: answers(url), webserver, log_path)
        data = graphql(url, WORKSPACE_QUERY)

    (entry,) = data["workspaceOrError"]["locationEntries"]
    location = entry["locationOrLoadError"]
    assert (entry["name"], entry["loadStatus"], location["__typename"]) == (
        LOCATION,
        "LOADED",
        "RepositoryLocation",
    ), location
    (repository,) = location["repositories"]
    assert {job["name"] for job in repository["jobs"]} >= JOBS
    # The webserver read the deployment's instance: the ECS launcher found the run task definition.
    assert data["instance"] == {"runLauncher": {"name": "EcsRunLauncher"}, "runQueuingSupported": True}
