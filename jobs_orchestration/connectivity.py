"""How every job talks to S3, SNS, SQS and PostgreSQL so that an outage costs seconds, not minutes.

A client's own retries only ride out a blip: a few quick attempts, each bounded by a connect and a read
timeout (botocore's defaults are 60 s each, five attempts, so one call against a silent endpoint could
hang for five minutes). Longer outages are the job of the ops' retry policies, with backoff and visible
in the run, and, beyond those, of a visible failure that leaves a record of what remains.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
import sqlalchemy.exc
from botocore.config import Config
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.exceptions import HTTPClientError

from jobs_orchestration import settings

CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 30
"""Longer than any one call takes when the service is healthy (a DeleteObjects of 1,000 keys, a long
poll of the queue), short enough that a silent endpoint is given up on within a minute."""
CLIENT_MAX_ATTEMPTS = 3
"""Attempts of one AWS call, the first included (standard retry mode: a few seconds of backoff)."""

POSTGRES_CONNECT_ARGS: dict[str, Any] = {
    "connect_timeout": CONNECT_TIMEOUT_SECONDS,
    # A connection whose server went away silently is found dead within about a minute instead of
    # the operating system's two hours.
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


INTAKE_CONNECT_TIMEOUT_SECONDS = 2
INTAKE_READ_TIMEOUT_SECONDS = 5
"""The intake's calls are small and its long polls wait 1 s: a call SQS has not answered in 5 s will not
be answered. With 2 attempts a silent SQS costs a tick about 12 s, inside its 30 s budget."""
INTAKE_MAX_ATTEMPTS = 2


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
        region_name=region_name or os.environ.get(settings.AWS_REGION) or None,
        endpoint_url=endpoint_url,
        use_ssl=use_ssl,
        verify=verify,
        aws_access_key_id=aws_access_key_id,
        aws_secret_access_key=aws_secret_access_key,
        aws_session_token=aws_session_token,
        config=config or aws_client_config(),
    )


def intake_client_config() -> Config:
    return aws_client_config(
        INTAKE_MAX_ATTEMPTS,
        connect_timeout=INTAKE_CONNECT_TIMEOUT_SECONDS,
        read_timeout=INTAKE_READ_TIMEOUT_SECONDS,
    )


class ServiceUnreachable(ConnectionError):
    """A service stopped answering during a job; later attempts may get through once it is back."""


def is_unreachable(error: BaseException) -> bool:
    """True for a lost or refused connection or a timeout, to an AWS endpoint or to the database: the
    service is not answering, as opposed to answering with an error."""
    if isinstance(error, (ConnectionError, BotoConnectionError, HTTPClientError, TimeoutError)):
        return True
    if isinstance(error, sqlalchemy.exc.DBAPIError):
        return error.connection_invalidated or isinstance(
            error, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)
        )
    return False
