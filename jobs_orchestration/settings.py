"""Names of the environment variables the project reads, and the defaults of the local stack."""

from __future__ import annotations

import os

JOBS_DATABASE_URL = "JOBS_DATABASE_URL"
EMAIL_PARSER_DATABASE_URL = "EMAIL_PARSER_DATABASE_URL"
JOBS_QUEUE_URL = "JOBS_QUEUE_URL"
JOBS_DEAD_LETTER_QUEUE_URL = "JOBS_DEAD_LETTER_QUEUE_URL"
CHANGELOG_TOPIC_ARN = "CHANGELOG_TOPIC_ARN"
AWS_REGION = "AWS_REGION"
AWS_ENDPOINT_URL = "AWS_ENDPOINT_URL"
TIMESERIES_BUCKET = "TIMESERIES_BUCKET"
SNAPSHOT_STORAGE_URL = "SNAPSHOT_STORAGE_URL"
SNAPSHOT_RETENTION_DAYS = "SNAPSHOT_RETENTION_DAYS"
SNAPSHOT_CLEANUP_TIMEZONE = "SNAPSHOT_CLEANUP_TIMEZONE"
AZURE_STORAGE_CONNECTION_STRING = "AZURE_STORAGE_CONNECTION_STRING"
ALERTS_TOPIC_ARN = "ALERTS_TOPIC_ARN"
"""SNS topic of operators' alerts (failed runs, dead letters); unset: alerts are only logged."""
DAGSTER_WEBSERVER_URL = "DAGSTER_WEBSERVER_URL"
"""The Dagster UI's address, for links in alerts."""
DEFAULT_WEBSERVER_URL = "http://127.0.0.1:3000"


def email_parser_url_variable() -> str:
    """The variable holding the Email Parser's database URL: its own when set, else the platform's.

    Only the variable's name is chosen here; Dagster resolves its value when a run starts, so the URL
    never enters the definitions shown in the UI.
    """
    return EMAIL_PARSER_DATABASE_URL if os.environ.get(EMAIL_PARSER_DATABASE_URL) else JOBS_DATABASE_URL


DATABASE_KINDS = {"postgresql": "postgres", "sqlite": "sqlite"}


def database_kind(variable: str) -> str | None:
    """The kind of database the variable's URL names (`postgres`, `sqlite`), for the UI's asset kinds;
    None when unset or another kind. Only the URL's scheme is looked at, never kept with the rest (which
    may hold a password)."""
    scheme = os.environ.get(variable, "").split(":", 1)[0]
    return DATABASE_KINDS.get(scheme.split("+", 1)[0].strip().lower())


def database_url_from_environment(variable: str = JOBS_DATABASE_URL) -> str:
    value = os.environ.get(variable)
    if not value and variable == EMAIL_PARSER_DATABASE_URL:
        value = os.environ.get(JOBS_DATABASE_URL)
    if not value:
        raise RuntimeError(f"{variable} is not set: give the database URL (e.g. postgresql+psycopg2://...)")
    return value


JOBS_INTAKE_BATCH_SIZE = "JOBS_INTAKE_BATCH_SIZE"
"""Job messages of one kind per run, changelog events aside (`IntakeLimits.batch_size` when unset; 1 gives
one run per message)."""
JOBS_INTAKE_CHANGELOG_BATCH_SIZE = "JOBS_INTAKE_CHANGELOG_BATCH_SIZE"
"""Changelog messages per run (`IntakeLimits.changelog_batch_size` when unset)."""
JOBS_INTAKE_INTERVAL_SECONDS = "JOBS_INTAKE_INTERVAL_SECONDS"
"""Least time between two ticks of the intake sensor (`DEFAULT_INTERVAL_SECONDS` of the sensor when unset)."""
