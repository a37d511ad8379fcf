"""Outages: the database's connection bounds, and how a service that stopped answering is told apart
from one that answers with an error. The AWS clients' bounds are in `jobs_orchestration.aws.clients`.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy.exc
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.exceptions import HTTPClientError

DATABASE_CONNECT_TIMEOUT_SECONDS = 5

POSTGRES_CONNECT_ARGS: dict[str, Any] = {
    "connect_timeout": DATABASE_CONNECT_TIMEOUT_SECONDS,
    # A connection whose server went away silently is found dead within about a minute instead of
    # the operating system's two hours.
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


class ServiceUnreachable(ConnectionError):
    """A service stopped answering during a job; later attempts may get through once it is back."""


def is_unreachable(error: BaseException) -> bool:
    """True for a lost or refused connection or a timeout, to an AWS endpoint or to the database: the
    service is not answering, as opposed to answering with an error."""
    if isinstance(error, (ConnectionError, BotoConnectionError, HTTPClientError, TimeoutError)):
        return True
    if isinstance(error, sqlalchemy.exc.DBAPIError):
        if refused_by_the_database(error):
            return False
        return error.connection_invalidated or isinstance(
            error, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)
        )
    return False


PASSING_REFUSALS = (
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "the database system is not yet accepting connections",
    "too many clients already",
    "remaining connection slots are reserved",
    "terminating connection due to administrator command",
)
"""What PostgreSQL answers a connection while it cannot take it for now: worth another attempt."""


def refused_by_the_database(error: sqlalchemy.exc.DBAPIError) -> bool:
    """True when PostgreSQL answered a connection with a FATAL error of its own, such as a database or
    role that does not exist or a failed password: the configuration is wrong, and waiting will not
    mend it. libpq gives such errors no SQLSTATE, so the server's words are read; the refusals that pass
    (`PASSING_REFUSALS`) are not counted."""
    message = str(error.orig)
    return "FATAL:" in message and not any(phrase in message for phrase in PASSING_REFUSALS)
