"""Shared fixtures: a fresh PostgreSQL database per test session, a real moto server over HTTP, and
the environment variables that point the project's resources at both."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from jobs_orchestration.db.migrate import upgrade
from jobs_orchestration.db.schema import all_metadata
from jobs_orchestration.defs.resources import EmailParserDatabase, PlatformDatabase
from jobs_orchestration.devstack.aws import (
    LOCAL_CREDENTIALS,
    LocalAws,
    provision,
    reset_moto,
    start_moto_server,
)
from jobs_orchestration.devstack.stack import local_instance_config
from jobs_orchestration_tests.support.azurite import AzuriteUnavailable, running_azurite
from jobs_orchestration_tests.support.postgres import PostgresUnavailable, temporary_database

SERVICE_FIXTURES = {"database_url", "moto_endpoint", "azurite_connection_string", "synthesized"}
"""A test that uses one of these needs a service (PostgreSQL, moto, Azurite) or the CDK's node process."""


def pytest_configure(config: pytest.Config) -> None:
    # No test may reach a real AWS account: fake credentials, and no profile from the machine.
    os.environ.pop("AWS_PROFILE", None)
    os.environ.update(LOCAL_CREDENTIALS)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `integration` every test that needs a service or starts the system, so `-m "not
    integration"` (`make test-fast`) is the unit lane: no PostgreSQL, no moto, no network."""
    for item in items:
        needs_service = SERVICE_FIXTURES & set(getattr(item, "fixturenames", ()))
        if needs_service or item.get_closest_marker("slow") or item.get_closest_marker("localstack"):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A PostgreSQL database of its own for this test session, migrated to the newest schema."""
    try:
        with temporary_database() as url:
            upgrade(url)
            yield url
    except PostgresUnavailable as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture
def clean_database(database_url: str) -> str:
    """The session database, emptied of rows before the test."""
    engine = sa.create_engine(database_url)
    tables = [table for metadata in all_metadata for table in metadata.sorted_tables]
    names = ", ".join(f'"{table.name}"' for table in tables)
    with engine.begin() as connection:
        connection.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return database_url


@pytest.fixture
def platform_db(clean_database: str) -> Iterator[PlatformDatabase]:
    resource = PlatformDatabase(url=clean_database)
    yield resource
    resource.engine.dispose()


@pytest.fixture
def email_parser_db(clean_database: str) -> Iterator[EmailParserDatabase]:
    resource = EmailParserDatabase(url=clean_database)
    yield resource
    resource.engine.dispose()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto server on 127.0.0.1 and a free port, for the whole session."""
    server, endpoint = start_moto_server()
    yield endpoint
    server.stop()


@pytest.fixture
def local_aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> LocalAws:
    """An empty moto server with the project's queues, topic and buckets, and the environment
    variables that point the project at them."""
    reset_moto(moto_endpoint)
    aws = provision(moto_endpoint)
    for name, value in aws.environment().items():
        monkeypatch.setenv(name, value)
    return aws


@pytest.fixture(scope="session")
def azurite_connection_string(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Azurite's blob service on 127.0.0.1 and a free port, for the whole session. Never skipped: a
    missing emulator fails the tests that need it, naming the command that installs it."""
    try:
        with running_azurite(tmp_path_factory.mktemp("azurite")) as connection_string:
            yield connection_string
    except AzuriteUnavailable as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture
def snapshot_root(tmp_path: Path) -> Path:
    root = tmp_path / "snapshots"
    root.mkdir()
    return root


@pytest.fixture
def project_env(clean_database: str, local_aws: LocalAws, snapshot_root: Path, monkeypatch) -> LocalAws:
    """Every environment variable the definitions read, pointing at this test's database and AWS."""
    monkeypatch.setenv("JOBS_DATABASE_URL", clean_database)
    monkeypatch.delenv("EMAIL_PARSER_DATABASE_URL", raising=False)
    monkeypatch.setenv("SNAPSHOT_STORAGE_URL", snapshot_root.as_uri())
    return local_aws


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture
def logging_instance() -> Iterator[dg.DagsterInstance]:
    """A test instance that, like the project's, sends the project's module loggers to the event log."""
    python_logs = local_instance_config()["python_logs"]
    with dg.instance_for_test(overrides={"python_logs": python_logs}) as test_instance:
        yield test_instance
