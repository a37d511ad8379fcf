"""Secrets (the database password, AWS keys) never reach run config, tags, the event log, metadata,
snapshots the UI shows, or the process output; and SQL built as text interpolates identifiers only."""

from __future__ import annotations

import ast
import json
import logging
import re
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster._serdes import serialize_value

from jobs_orchestration.definitions import defs
from jobs_orchestration.defs.changelog.config import RECORD_CHANGELOG_EVENTS_OP
from jobs_orchestration_tests.support.changelog import (
    DATASET_ID,
    ORGANIZATION_ID,
    USER_NODE_ID,
    seed_platform,
)
from jobs_orchestration_tests.support.queue import send

DATABASE_PASSWORD = "S3cr3t-Canary-Pass"
ACCESS_KEY = "AKIACANARYKEY0000042"
SECRET_KEY = "Canary/Secret+Key0000000000000000000042"
CANARIES = (DATABASE_PASSWORD, ACCESS_KEY, SECRET_KEY)
PACKAGE_ROOT = Path(__file__).resolve().parents[2] / "jobs_orchestration"


def with_password(url: str, password: str = DATABASE_PASSWORD) -> str:
    # PostgreSQL here trusts local connections, so any password is accepted.
    return sa.make_url(url).set(password=password).render_as_string(hide_password=False)


@pytest.fixture
def canary_env(project_env, clean_database, monkeypatch):
    monkeypatch.setenv("JOBS_DATABASE_URL", with_password(clean_database))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    engine = sa.create_engine(clean_database)
    with engine.begin() as connection:
        seed_platform(connection)
    engine.dispose()
    return project_env


def changelog_run_config(job_id: str, dataset_id: int = DATASET_ID) -> dict:
    message = {
        "organization_id": ORGANIZATION_ID,
        "dataset_id": dataset_id,
        "user_id": USER_NODE_ID,
        "trace_id": "trace-secrets",
        "job_id": job_id,
        "events": [
            {"event_type": "ADD_TAG", "event_detail_json": json.dumps({"name": "mri"}), "timestamp": None}
        ],
    }
    return {"ops": {RECORD_CHANGELOG_EVENTS_OP: {"config": {"messages": [message]}}}}


def everything_recorded_about(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """What the UI and the API can show about a run, as text."""
    run = instance.get_run_by_id(run_id)
    assert run is not None
    texts = [json.dumps(run.run_config, default=str), json.dumps(run.tags)]
    texts += [serialize_value(record) for record in instance.all_logs(run_id)]
    texts += [str(record) for record in instance.all_logs(run_id)]
    texts.append(serialize_value(instance.get_job_snapshot(run.job_snapshot_id)))
    texts.append(serialize_value(instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)))
    # Compute logs (captured stdout/stderr of the steps) and any other file the instance wrote.
    for path in Path(instance.root_directory).rglob("*"):
        if path.is_file():
            texts.append(path.read_bytes().decode("utf-8", errors="replace"))
    return texts


def capture_project_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Everything the project and Dagster log, down to DEBUG, and other libraries at INFO: botocore's
    own DEBUG output prints signed request headers (with the access key id), which no deployment
    enables."""
    caplog.set_level(logging.INFO)
    for name in ("jobs_orchestration", "dagster"):
        caplog.set_level(logging.DEBUG, logger=name)


def assert_no_canary(texts: list[str]) -> None:
    for text in texts:
        for canary in CANARIES:
            assert canary not in text, f"secret {canary[:6]}... found in: {text[:300]}"


def test_a_successful_run_records_no_secret(canary_env, instance, capfd, caplog) -> None:
    capture_project_logs(caplog)
    result = defs.resolve_job_def("dataset_changelog_job").execute_in_process(
        run_config=changelog_run_config("job-secret-ok"), instance=instance
    )
    assert result.success
    texts = everything_recorded_about(instance, result.run_id)
    metadata = [serialize_value(event.event_specific_data) for event in result.all_events]
    assert any("events_recorded" in text for text in metadata)  # the metadata is really there
    captured = capfd.readouterr()
    assert_no_canary([*texts, *metadata, captured.out, captured.err, caplog.text])


def test_a_refused_message_fails_the_run_without_leaking_a_secret(
    canary_env, instance, capfd, caplog
) -> None:
    capture_project_logs(caplog)
    result = defs.resolve_job_def("dataset_changelog_job").execute_in_process(
        run_config=changelog_run_config("job-secret-refused", dataset_id=404),
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    texts = everything_recorded_about(instance, result.run_id)
    assert any("refused" in text for text in texts)
    captured = capfd.readouterr()
    assert_no_canary([*texts, captured.out, captured.err, caplog.text])


def test_an_unreachable_database_fails_the_run_without_leaking_the_password(
    canary_env, clean_database, instance, capfd, caplog, monkeypatch
) -> None:
    """The driver's connection error is the usual place a URL with its password ends up in a log."""
    capture_project_logs(caplog)
    missing = sa.make_url(with_password(clean_database)).set(database="no_such_database_for_secrets")
    monkeypatch.setenv("JOBS_DATABASE_URL", missing.render_as_string(hide_password=False))
    result = defs.resolve_job_def("dataset_changelog_job").execute_in_process(
        run_config=changelog_run_config("job-secret-no-db"), instance=instance, raise_on_error=False
    )
    assert not result.success
    texts = everything_recorded_about(instance, result.run_id)
    assert any("no_such_database_for_secrets" in text for text in texts)  # the error is there, visibly
    captured = capfd.readouterr()
    assert_no_canary([*texts, captured.out, captured.err, caplog.text])


def test_a_dead_lettered_message_leaks_no_secret(canary_env, instance, capfd, caplog) -> None:
    from jobs_orchestration.defs.intake.sensor import build_sqs_jobs_sensor
    from jobs_orchestration.intake.handoff import IntakeLimits
    from jobs_orchestration_tests.support.intake_jobs import INTAKE_JOB_TYPES
    from jobs_orchestration_tests.support.queue import sqs_resource

    capture_project_logs(caplog)
    send(canary_env, '{"DeletePackageJob": {"packageId": "1; DROP TABLE packages"}}')
    sensor = build_sqs_jobs_sensor(INTAKE_JOB_TYPES, limits=IntakeLimits(wait_time_seconds=0))
    with dg.build_sensor_context(instance=instance, resources={"sqs": sqs_resource(canary_env)}) as context:
        result = sensor(context)
    assert not result.run_requests
    dead = canary_env.client("sqs").receive_message(
        QueueUrl=canary_env.dead_letter_queue_url, MessageAttributeNames=["All"], WaitTimeSeconds=0
    )["Messages"]
    texts = [json.dumps(message) for message in dead]
    assert "packageId" in texts[0]
    texts.append(serialize_value(result.asset_events))
    captured = capfd.readouterr()
    assert_no_canary([*texts, captured.out, captured.err, caplog.text])


# -- SQL text -------------------------------------------------------------------------------------------

# The project writes SQL keywords in capitals; matching case keeps English messages ("set X") out.
SQL_START = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH|COPY|TRUNCATE|CREATE|ALTER|DROP|SET)\b")

REVIEWED_INTERPOLATIONS = {
    # file -> the only expressions its SQL f-strings may interpolate, each an identifier taken from
    # the models' own table and column names, never from a message.
    "db/bulk.py": {"table.name", "column_list"},
    "devstack/seed.py": {"table"},
    # A SQL fragment defined as a constant in the same module; the VALUES list it names holds only
    # bound parameters (`_with_roots`).
    "deletion/scope.py": {"_ROOT_PACKAGES"},
    # Literal lists of the project's own enum constants (storage_totals.rules.sql_list).
    "storage_totals/consistency.py": {"sql_list(UNCOUNTED_DATASET_STATES)"},
    # SQL fragments defined as constants in the same module, and the same constant state lists.
    "storage_totals/queries.py": {
        "BATCH_PACKAGES",
        "DATASET_SIZES",
        "ORGANIZATION_SIZES",
        "PACKAGE_SIZES",
        "_COUNTED_SOURCE_FILES_OF_P",
        "_ROWS_TO_INSERT_AND_UPDATE",
        "dataset_sizes",
        "roots",
        "sql_list(BLOCKED_PACKAGE_STATES)",
        "sql_list(UNCACHED_PACKAGE_STATES)",
        "sql_list(UNCOUNTED_DATASET_STATES)",
    },
    # Temporary table names and FROM clauses, all constants of storage_totals.queries.
    "storage_totals/refresh.py": {"from_clause", "table"},
}


def sql_fstring_interpolations() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.JoinedStr):
                continue
            literal = "".join(part.value for part in node.values if isinstance(part, ast.Constant))
            if not SQL_START.match(literal):
                continue
            expressions = {
                ast.unparse(part.value) for part in node.values if isinstance(part, ast.FormattedValue)
            }
            found.setdefault(path.relative_to(PACKAGE_ROOT).as_posix(), set()).update(expressions)
    return found


def test_sql_built_as_text_interpolates_only_reviewed_identifiers() -> None:
    found = sql_fstring_interpolations()
    assert found, "the scan must see the known SQL f-strings"
    for file, expressions in found.items():
        assert expressions <= REVIEWED_INTERPOLATIONS.get(file, set()), (
            f"{file} interpolates {sorted(expressions - REVIEWED_INTERPOLATIONS.get(file, set()))} into SQL text: "
            "bind it as a parameter, or review it as an identifier and list it here"
        )


def test_the_reviewed_identifiers_come_from_the_models() -> None:
    """The two reviewed sites take their names from SQLAlchemy metadata, not from input."""
    bulk = (PACKAGE_ROOT / "db/bulk.py").read_text()
    assert "table: sa.Table" in bulk
    seed = (PACKAGE_ROOT / "devstack/seed.py").read_text()
    assert "table = model.__tablename__" in seed


def test_no_sql_is_formatted_with_percent_or_format() -> None:
    offenders = []
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            text = None
            if (
                isinstance(node, ast.BinOp)
                and isinstance(node.op, ast.Mod)
                and isinstance(node.left, ast.Constant)
            ):
                text = node.left.value
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "format"
                and isinstance(node.func.value, ast.Constant)
            ):
                text = node.func.value.value
            if isinstance(text, str) and SQL_START.match(text):
                offenders.append(f"{path.relative_to(PACKAGE_ROOT)}:{node.lineno}")
    assert offenders == []
