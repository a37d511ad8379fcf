"""boto3 clients whose calls are bounded, so that an outage costs seconds, not minutes.

A client's own retries only ride out a blip: a few quick attempts, each bounded by a connect and a read
timeout (botocore's defaults are 60 s each, five attempts, so one call against a silent endpoint could
hang for five minutes). Longer outages are the job of the ops' retry policies, with backoff and visible
in the run, and, beyond those, of a visible failure that leaves a record of what remains.

Three sets of bounds: the jobs' (`aws_client_config()`), the sensors' ticks (`intake_client_config()`:
a tick must end well inside Dagster's 60 s), and the command line's (`command_line_client_config()`: a
person is waiting).
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from jobs_orchestration.settings import load_settings

CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 30
"""Longer than any one call takes when the service is healthy (a DeleteObjects of 1,000 keys, a long
poll of the queue), short enough that a silent endpoint is given up on within a minute."""
CLIENT_MAX_ATTEMPTS = 3
"""Attempts of one AWS call, the first included (standard retry mode: a few seconds of backoff)."""

INTAKE_CONNECT_TIMEOUT_SECONDS = 2
INTAKE_READ_TIMEOUT_SECONDS = 5
"""The intake's calls are small and its long polls wait 1 s: a call SQS has not answered in 5 s will not
be answered. With 2 attempts a silent SQS costs a tick about 12 s, inside its 30 s budget."""
INTAKE_MAX_ATTEMPTS = 2

COMMAND_LINE_CONNECT_TIMEOUT_SECONDS = 3
COMMAND_LINE_READ_TIMEOUT_SECONDS = 6
COMMAND_LINE_MAX_ATTEMPTS = 2
"""A person waits for the command line: an endpoint that is not there or never answers is reported
within about 13 s (two attempts of 6 s and a backoff), shorter than the jobs' bounds."""


def aws_client_config(
    max_attempts: int = CLIENT_MAX_ATTEMPTS,
    *,
    connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
    read_timeout: float = READ_TIMEOUT_SECONDS,
) -> Config:
    return Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"total_max_attempts": max_attempts, "mode": "standard"},
    )


def intake_client_config() -> Config:
    return aws_client_config(
        INTAKE_MAX_ATTEMPTS,
        connect_timeout=INTAKE_CONNECT_TIMEOUT_SECONDS,
        read_timeout=INTAKE_READ_TIMEOUT_SECONDS,
    )


def command_line_client_config() -> Config:
    return aws_client_config(
        COMMAND_LINE_MAX_ATTEMPTS,
        connect_timeout=COMMAND_LINE_CONNECT_TIMEOUT_SECONDS,
        read_timeout=COMMAND_LINE_READ_TIMEOUT_SECONDS,
    )


def aws_client(
    service: str,
    *,
    region_name: str | None = None,
    endpoint_url: str | None = None,
    profile_name: str | None = None,
    use_ssl: bool = True,
    verify: bool | str | None = None,
    aws_access_key_id: str | None = None,
    aws_secret_access_key: str | None = None,
    aws_session_token: str | None = None,
    config: Config | None = None,
) -> Any:
    """A boto3 client with bounded calls (`aws_client_config()` unless `config` is given). Unset
    arguments fall back to boto3's own lookup (AWS_ENDPOINT_URL, the credentials chain, the profile),
    except the region: AWS_REGION is read here, because botocore alone reads only AWS_DEFAULT_REGION."""
    session = boto3.session.Session(profile_name=profile_name)
    return session.client(
        service,
        region_name=region_name or load_settings().aws_region,
        endpoint_url=endpoint_url,
        use_ssl=use_ssl,
        verify=verify,
        aws_access_key_id=aws_access_key_id,
        aws_secret_access_key=aws_secret_access_key,
        aws_session_token=aws_session_token,
        config=config or aws_client_config(),
    )
