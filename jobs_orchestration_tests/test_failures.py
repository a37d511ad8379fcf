"""One classification of errors for every retry layer: transient errors are worth another attempt,
permanent ones fail at once. Database errors are raised by the real PostgreSQL server."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

from jobs_orchestration.connectivity import is_unreachable
from jobs_orchestration.failures import describe, is_transient


def _client_error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
    )


@pytest.mark.parametrize(
    "code", ["Throttling", "SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable"]
)
def test_throttling_timeouts_and_service_errors_are_transient(code):
    assert is_transient(_client_error(code))


@pytest.mark.parametrize(
    "code",
    [
        "AccessDenied",
        "NoSuchBucket",
        "AWS.SimpleQueueService.NonExistentQueue",
        "NotFound",
        "InvalidParameter",
    ],
)
def test_access_missing_resources_and_bad_requests_are_permanent(code):
    assert not is_transient(_client_error(code))


def test_an_unknown_code_with_a_server_status_is_transient():
    assert is_transient(_client_error("SomethingNew", 503))
    assert not is_transient(_client_error("SomethingNew", 400))


@pytest.mark.parametrize(
    "error",
    [
        EndpointConnectionError(endpoint_url="http://s3"),
        ConnectTimeoutError(endpoint_url="http://s3"),
        ReadTimeoutError(endpoint_url="http://s3"),
        ConnectionResetError("reset"),
        TimeoutError("timed out"),
    ],
)
def test_lost_connections_and_timeouts_are_transient(error):
    assert is_transient(error)


def test_an_unknown_exception_is_permanent():
    assert not is_transient(ValueError("a bug"))


@pytest.fixture
def engine(clean_database):
    engine = sa.create_engine(clean_database)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE classified (id int PRIMARY KEY, name varchar(3))"))
        connection.execute(sa.text("INSERT INTO classified VALUES (1, 'a'), (2, 'b')"))
    yield engine
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE classified"))
    engine.dispose()


def _raised(engine, statement: str) -> sa.exc.DBAPIError:
    with pytest.raises(sa.exc.DBAPIError) as caught, engine.begin() as connection:
        connection.execute(sa.text(statement))
    return caught.value


@pytest.mark.parametrize(
    ("database", "user", "words"),
    [
        ("no_such_database", "postgres", 'database "no_such_database" does not exist'),
        ("postgres", "no_such_role", 'role "no_such_role" does not exist'),
    ],
)
def test_a_database_or_role_that_does_not_exist_is_permanent_not_an_outage(
    database_url, database, user, words
):
    """The server answered: waiting for it to come back would only delay the failure a person must fix."""
    url = sa.engine.make_url(database_url).set(database=database, username=user)
    engine = sa.create_engine(url)
    with pytest.raises(sa.exc.OperationalError) as caught:
        engine.connect()
    engine.dispose()
    assert not is_unreachable(caught.value) and not is_transient(caught.value)
    assert words in describe(caught.value)


def test_a_database_that_refuses_connections_at_its_port_is_an_outage():
    engine = sa.create_engine("postgresql+psycopg2://postgres@127.0.0.1:9/postgres")
    with pytest.raises(sa.exc.OperationalError) as caught:
        engine.connect()
    assert is_unreachable(caught.value) and is_transient(caught.value)


def test_data_and_integrity_errors_are_permanent_and_described_without_their_sql(engine):
    too_long = _raised(engine, "INSERT INTO classified VALUES (3, 'abcd')")
    duplicate = _raised(engine, "INSERT INTO classified VALUES (1, 'z')")
    out_of_range = _raised(engine, "INSERT INTO classified VALUES (3000000000, 'z')")

    for error in (too_long, duplicate, out_of_range):
        assert not is_transient(error)
    assert describe(too_long).startswith("StringDataRightTruncation: value too long")
    assert "INSERT" not in describe(duplicate)


def test_a_serialization_failure_and_a_deadlock_are_transient(engine):
    """Two serializable transactions that each read what the other writes: one must fail."""
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def write(mine: int, theirs: int) -> None:
        try:
            with (
                engine.connect().execution_options(isolation_level="SERIALIZABLE") as connection,
                connection.begin(),
            ):
                connection.execute(sa.text("SELECT name FROM classified WHERE id = :id"), {"id": theirs})
                barrier.wait(timeout=10)
                connection.execute(sa.text("UPDATE classified SET name = 'x' WHERE id = :id"), {"id": mine})
        except sa.exc.DBAPIError as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=pair) for pair in ((1, 2), (2, 1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors, "one of two conflicting serializable transactions must fail"
    assert all(is_transient(error) for error in errors)
    assert any(getattr(error.orig, "pgcode", None) in ("40001", "40P01") for error in errors)
