"""`Settings`: every variable parsed by its name, with its type and default; a bad value is named with what
is wrong, and a secret's value appears in no repr, dump or error."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from jobs_orchestration import settings
from jobs_orchestration.settings import DEFAULTS, Settings, SettingsError, database_kind, load_settings

SECRET = "hunter2-Sup3rSecret"
DATABASE_URL = f"postgresql+psycopg2://jobs:{SECRET}@db.internal:5432/platform"
AZURE = f"DefaultEndpointsProtocol=https;AccountName=snapshots;AccountKey={SECRET};"


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment holding none of the project's variables, to set them one by one."""
    for variable in settings.VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    return monkeypatch


def test_unset_variables_take_the_defaults(environment):
    current = load_settings()
    assert current == DEFAULTS
    assert current.snapshot_retention_days == 7
    assert current.snapshot_cleanup_timezone == "Europe/Oslo"
    assert current.jobs_intake_interval_seconds == 4
    assert current.dagster_webserver_url == "http://127.0.0.1:3000"
    assert current.jobs_database_url is None and current.jobs_intake_batch_size is None
    assert current.model_fields_set == set()


def test_each_field_is_read_from_its_variable_with_its_type(environment):
    values = {
        settings.JOBS_DATABASE_URL: DATABASE_URL,
        settings.JOBS_QUEUE_URL: "http://localhost:5000/123/jobs",
        settings.AWS_REGION: "eu-north-1",
        settings.SNAPSHOT_RETENTION_DAYS: " 14 ",
        settings.SNAPSHOT_CLEANUP_TIMEZONE: "UTC",
        settings.JOBS_INTAKE_BATCH_SIZE: "1",
        settings.JOBS_INTAKE_CHANGELOG_BATCH_SIZE: "300",
        settings.JOBS_INTAKE_INTERVAL_SECONDS: "30",
        settings.AZURE_STORAGE_CONNECTION_STRING: AZURE,
    }
    for variable, value in values.items():
        environment.setenv(variable, value)
    current = load_settings()
    assert current.jobs_database_url is not None
    assert current.jobs_database_url.get_secret_value() == DATABASE_URL
    assert current.jobs_queue_url == "http://localhost:5000/123/jobs"
    assert current.aws_region == "eu-north-1"
    assert current.snapshot_retention_days == 14
    assert current.snapshot_cleanup_timezone == "UTC"
    assert (current.jobs_intake_batch_size, current.jobs_intake_changelog_batch_size) == (1, 300)
    assert current.jobs_intake_interval_seconds == 30
    assert current.azure_storage_connection_string is not None
    assert current.azure_storage_connection_string.get_secret_value() == AZURE


def test_a_blank_variable_is_unset(environment):
    environment.setenv(settings.SNAPSHOT_RETENTION_DAYS, "")
    environment.setenv(settings.SNAPSHOT_CLEANUP_TIMEZONE, "   ")
    environment.setenv(settings.ALERTS_TOPIC_ARN, " ")
    assert load_settings() == DEFAULTS


def test_only_the_exact_name_is_read(environment):
    environment.setenv(settings.SNAPSHOT_RETENTION_DAYS.lower(), "3")
    environment.setenv("snapshot_retention_days", "3")
    assert load_settings().snapshot_retention_days == DEFAULTS.snapshot_retention_days


def test_the_environment_is_read_on_each_load_not_at_import(environment):
    environment.setenv(settings.SNAPSHOT_RETENTION_DAYS, "3")
    assert load_settings().snapshot_retention_days == 3
    environment.setenv(settings.SNAPSHOT_RETENTION_DAYS, "4")
    assert load_settings().snapshot_retention_days == 4
    assert DEFAULTS.snapshot_retention_days == 7


@pytest.mark.parametrize(
    ("variable", "value", "wrong"),
    [
        (settings.SNAPSHOT_RETENTION_DAYS, "0", "greater than or equal to 1"),
        (settings.SNAPSHOT_RETENTION_DAYS, "-3", "greater than or equal to 1"),
        (settings.SNAPSHOT_RETENTION_DAYS, "seven", "valid integer"),
        (settings.SNAPSHOT_RETENTION_DAYS, "1.5", "valid integer"),
        (settings.JOBS_INTAKE_BATCH_SIZE, "0", "greater than or equal to 1"),
        (settings.JOBS_INTAKE_CHANGELOG_BATCH_SIZE, "ten", "valid integer"),
        (settings.JOBS_INTAKE_INTERVAL_SECONDS, "0", "greater than or equal to 1"),
        (settings.SNAPSHOT_CLEANUP_TIMEZONE, "Mars/Olympus_Mons", "not an IANA time zone name"),
        (settings.SNAPSHOT_CLEANUP_TIMEZONE, "CET+1", "not an IANA time zone name"),
        (settings.SNAPSHOT_CLEANUP_TIMEZONE, "../etc/passwd", "not an IANA time zone name"),
    ],
)
def test_a_bad_value_is_named_with_what_is_wrong(environment, variable, value, wrong):
    environment.setenv(variable, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value)
    assert f"{variable}={value!r}: " in message and wrong in message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_every_bad_value_is_named_at_once(environment):
    environment.setenv(settings.SNAPSHOT_RETENTION_DAYS, "0")
    environment.setenv(settings.JOBS_INTAKE_INTERVAL_SECONDS, "soon")
    with pytest.raises(
        SettingsError, match="SNAPSHOT_RETENTION_DAYS='0'.*; JOBS_INTAKE_INTERVAL_SECONDS='soon'"
    ):
        load_settings()


def test_a_secret_is_in_no_repr_dump_or_error(environment):
    environment.setenv(settings.JOBS_DATABASE_URL, DATABASE_URL)
    environment.setenv(settings.EMAIL_PARSER_DATABASE_URL, DATABASE_URL)
    environment.setenv(settings.AZURE_STORAGE_CONNECTION_STRING, AZURE)
    current = load_settings()
    for shown in (repr(current), str(current), current.model_dump_json(), str(current.model_dump())):
        assert SECRET not in shown
    environment.setenv(settings.SNAPSHOT_RETENTION_DAYS, "0")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert SECRET not in str(raised.value) and SECRET not in repr(raised.value)


def test_a_bad_secret_is_named_without_its_value():
    with pytest.raises(ValidationError) as raised:
        Settings(JOBS_DATABASE_URL={"password": SECRET})
    message = settings.describe(raised.value)
    assert message.startswith("bad environment: JOBS_DATABASE_URL: ")
    assert SECRET not in message and SECRET not in str(raised.value)


def test_the_secret_variables_are_the_urls_and_keys():
    assert {
        settings.JOBS_DATABASE_URL,
        settings.EMAIL_PARSER_DATABASE_URL,
        settings.AZURE_STORAGE_CONNECTION_STRING,
    } == settings.SECRET_VARIABLES


def test_the_names_are_the_fields_aliases_each_once():
    assert len(set(settings.VARIABLES)) == len(settings.VARIABLES) == len(Settings.model_fields)
    constants = {name: value for name, value in vars(settings).items() if name in settings.VARIABLES}
    assert constants == {variable: variable for variable in settings.VARIABLES}
    assert all(info.description for info in Settings.model_fields.values())


def test_the_email_parser_database_defaults_to_the_platform_s(environment):
    assert load_settings().email_parser_database_variable == settings.JOBS_DATABASE_URL
    environment.setenv(settings.EMAIL_PARSER_DATABASE_URL, "sqlite:///parser.db")
    assert load_settings().email_parser_database_variable == settings.EMAIL_PARSER_DATABASE_URL


def test_the_database_kind_comes_from_the_scheme_alone(environment):
    environment.setenv(settings.JOBS_DATABASE_URL, DATABASE_URL)
    assert database_kind(load_settings().jobs_database_url) == "postgres"
    environment.setenv(settings.JOBS_DATABASE_URL, "sqlite:////tmp/jobs.db")
    assert database_kind(load_settings().jobs_database_url) == "sqlite"
    environment.setenv(settings.JOBS_DATABASE_URL, "mysql://x")
    assert database_kind(load_settings().jobs_database_url) is None
    assert database_kind(None) is None


def test_a_command_takes_the_database_url_from_the_settings(environment, tmp_path):
    from click.testing import CliRunner

    from jobs_orchestration.cli import main

    unset = CliRunner().invoke(main, ["db", "upgrade", "--domain", "platform"])
    assert unset.exit_code == 2 and "give --url or set JOBS_DATABASE_URL" in unset.output

    environment.setenv(settings.JOBS_DATABASE_URL, f"sqlite:///{tmp_path / 'jobs.db'}")
    migrated = CliRunner().invoke(main, ["db", "upgrade", "--domain", "platform"])
    assert migrated.exit_code == 0, migrated.output
    assert (tmp_path / "jobs.db").exists()

    environment.setenv(settings.JOBS_DATABASE_URL, DATABASE_URL)
    environment.setenv(settings.SNAPSHOT_RETENTION_DAYS, "none")
    refused = CliRunner().invoke(main, ["db", "upgrade", "--domain", "platform"])
    assert refused.exit_code == 2 and "SNAPSHOT_RETENTION_DAYS='none'" in refused.output
    assert SECRET not in refused.output
