"""Throw-away PostgreSQL databases on the machine's server, for tests and benchmarks."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import make_url

SERVER_URL = os.environ.get("JOBS_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")


class PostgresUnavailable(RuntimeError):
    pass


def _admin_engine() -> sa.Engine:
    return sa.create_engine(SERVER_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


def check_server() -> None:
    engine = _admin_engine()
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as error:
        raise PostgresUnavailable(
            f"PostgreSQL is not answering at {make_url(SERVER_URL).render_as_string(hide_password=True)}: "
            f"{error.orig}. Start it (see the README) and run the tests again."
        ) from error
    finally:
        engine.dispose()


@contextmanager
def temporary_database(prefix: str = "jobs_test") -> Iterator[str]:
    """Create an empty database, yield its URL, drop it afterwards (even if connections remain)."""
    check_server()
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    engine = _admin_engine()
    try:
        with engine.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False)
        finally:
            with engine.connect() as connection:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()
