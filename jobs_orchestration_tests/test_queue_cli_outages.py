"""The `jobs-orchestration enqueue` and `dlq` commands, run as a person runs them (a subprocess), against
an SQS endpoint that is not there or never answers: each gives up well within 30 s with one line
naming the endpoint, never a traceback. And the region comes from AWS_REGION as the README says."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time

import pytest

from jobs_orchestration.devstack.stack import free_port
from jobs_orchestration_tests.support import job_messages as m
from jobs_orchestration_tests.support.queue import counts
from jobs_orchestration_tests.support.silent_endpoint import silent_endpoint

pytestmark = pytest.mark.integration  # each command waits out its connection bounds

GIVE_UP_WITHIN_SECONDS = 30
"""What a person may wait. The commands' own bounds (2 attempts, a 3 s connect and a 6 s read timeout)
add up to about 13 s against a silent endpoint, and starting Python takes a second or two on a quiet
machine (measured 13.5-15 s in all; 27 s once under a load average of 19 on 2 cores)."""


def closed_endpoint() -> contextlib.AbstractContextManager[str]:
    """A port on 127.0.0.1 where nothing listens: connections are refused."""
    return contextlib.nullcontext(f"http://127.0.0.1:{free_port()}")


def cli_environment(**variables: str) -> dict[str, str]:
    """This process's environment without any AWS region, endpoint, queue or profile setting, plus
    `variables`; credentials are the local emulator's (never real ones)."""
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "JOBS_"))
    }
    return {
        **environment,
        "AWS_ACCESS_KEY_ID": "local-access-key",
        "AWS_SECRET_ACCESS_KEY": "local-secret-key",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        **variables,
    }


def run_cli(arguments: list[str], environment: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-m", "jobs_orchestration.cli", *arguments],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return completed, time.monotonic() - started


COMMANDS = {
    "enqueue": lambda endpoint: ["enqueue", "raw", m.delete_package(), "--queue-url", f"{endpoint}/123/q"],
    "dlq list": lambda endpoint: ["dlq", "list", "--dead-letter-queue-url", f"{endpoint}/123/dlq"],
}


@pytest.mark.parametrize("endpoint_kind", ["silent", "closed"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_an_unreachable_endpoint_ends_the_command_quickly_with_one_line_naming_it(command, endpoint_kind):
    endpoint_of = silent_endpoint if endpoint_kind == "silent" else closed_endpoint
    with endpoint_of() as endpoint:
        completed, elapsed = run_cli(
            COMMANDS[command](endpoint), cli_environment(AWS_REGION="us-east-1", AWS_ENDPOINT_URL=endpoint)
        )

    assert completed.returncode != 0
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    assert endpoint in lines[0]
    assert ("did not answer" if endpoint_kind == "silent" else "could not connect") in lines[0], lines[0]
    assert "Traceback" not in completed.stderr + completed.stdout
    assert elapsed < GIVE_UP_WITHIN_SECONDS, elapsed


def test_the_region_comes_from_AWS_REGION(local_aws):
    completed, _ = run_cli(
        ["enqueue", "raw", m.delete_package(), "--queue-url", local_aws.queue_url],
        cli_environment(AWS_REGION=local_aws.region, AWS_ENDPOINT_URL=local_aws.endpoint_url),
    )

    assert completed.returncode == 0, completed.stderr
    assert counts(local_aws, local_aws.queue_url) == (1, 0)


def test_no_region_at_all_is_one_line_saying_so():
    with closed_endpoint() as endpoint:
        completed, _ = run_cli(COMMANDS["dlq list"](endpoint), cli_environment())

    assert completed.returncode != 0
    [line] = completed.stderr.strip().splitlines()
    assert "AWS_REGION" in line and "Traceback" not in completed.stderr
