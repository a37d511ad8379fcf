"""Every environment variable the project reads: its name, type, default and meaning, in `Settings`.

`load_settings()` reads them when a run, a tick or a command starts, so a changed variable takes effect
at the next one without a reload; only what is part of a definition (the sensor's interval, the
schedule's time zone) is read when the code location loads. A bad value fails with `SettingsError`,
which names each variable and what is wrong with it, and never repeats a secret's value.

Dagster resources take no values from here: they resolve `dg.EnvVar(name)` when a run starts, with the
names below, so no URL or key enters the definitions the UI shows.
"""

from __future__ import annotations

import zoneinfo
from typing import Annotated, Any, get_args

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

WholeNumberAtLeastOne = Annotated[int, Field(ge=1)]


class SettingsError(ValueError):
    """One or more variables hold a bad value; the message names each and says what is wrong."""


class Settings(BaseSettings):
    """The environment as the project reads it. Unset or blank variables take the default here;
    None means unset where the variable has no default (its reader says what that means)."""

    model_config = SettingsConfigDict(
        case_sensitive=True,
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
        # A validation error's text must never carry a secret's value.
        hide_input_in_errors=True,
        str_strip_whitespace=True,
    )

    jobs_database_url: SecretStr | None = Field(
        default=None,
        alias="JOBS_DATABASE_URL",
        description="platform database, e.g. `postgresql+psycopg2://user:password@host:5432/platform`",
    )
    email_parser_database_url: SecretStr | None = Field(
        default=None,
        alias="EMAIL_PARSER_DATABASE_URL",
        description="Email Parser database (defaults to `JOBS_DATABASE_URL`)",
    )
    jobs_queue_url: str | None = Field(
        default=None, alias="JOBS_QUEUE_URL", description="the job queue the platform's services send to"
    )
    jobs_dead_letter_queue_url: str | None = Field(
        default=None, alias="JOBS_DEAD_LETTER_QUEUE_URL", description="the job queue's dead-letter queue"
    )
    changelog_topic_arn: str | None = Field(
        default=None, alias="CHANGELOG_TOPIC_ARN", description="SNS topic of dataset changelog events"
    )
    aws_region: str | None = Field(default=None, alias="AWS_REGION", description="AWS region")
    aws_endpoint_url: str | None = Field(
        default=None,
        alias="AWS_ENDPOINT_URL",
        description="AWS endpoint, only for an emulator (boto3 honours it)",
    )
    timeseries_bucket: str | None = Field(
        default=None, alias="TIMESERIES_BUCKET", description="bucket holding time-series range objects"
    )
    snapshot_storage_url: str | None = Field(
        default=None,
        alias="SNAPSHOT_STORAGE_URL",
        description="`file:///path`, `s3://bucket/prefix` or `azure://container/prefix`",
    )
    snapshot_retention_days: WholeNumberAtLeastOne = Field(
        default=7, alias="SNAPSHOT_RETENTION_DAYS", description="days a parse-session snapshot is kept"
    )
    snapshot_cleanup_timezone: str = Field(
        default="Europe/Oslo",
        alias="SNAPSHOT_CLEANUP_TIMEZONE",
        description="IANA zone of the 03:00 snapshot cleanup",
    )
    azure_storage_connection_string: SecretStr | None = Field(
        default=None,
        alias="AZURE_STORAGE_CONNECTION_STRING",
        description="for `azure://` snapshot storage",
    )
    # Unset, the batch sizes are `IntakeLimits`' own: the intake's core owns those defaults and their
    # reasons (see `limits_from_settings` in the intake sensor).
    jobs_intake_batch_size: WholeNumberAtLeastOne | None = Field(
        default=None,
        alias="JOBS_INTAKE_BATCH_SIZE",
        description="most job messages of one type per run, changelog events aside; 1 = a run per message",
    )
    jobs_intake_changelog_batch_size: WholeNumberAtLeastOne | None = Field(
        default=None, alias="JOBS_INTAKE_CHANGELOG_BATCH_SIZE", description="most changelog messages per run"
    )
    # Under the daemon's 5 s loop: a loop often comes a fraction of a second before 5 s have passed
    # since the last tick started, and at 5 skips the sensor, so ticks came 10 s apart; at 4 every loop
    # starts one (README "Job messages").
    jobs_intake_interval_seconds: WholeNumberAtLeastOne = Field(
        default=4,
        alias="JOBS_INTAKE_INTERVAL_SECONDS",
        description="least time between two ticks of `sqs_jobs_sensor`",
    )
    alerts_topic_arn: str | None = Field(
        default=None,
        alias="ALERTS_TOPIC_ARN",
        description="SNS topic alerts are published to (failed runs, new dead letters); unset: alerts "
        "are only logged, in the sensor's tick log, and not sent",
    )
    dagster_webserver_url: str = Field(
        default="http://127.0.0.1:3000",
        alias="DAGSTER_WEBSERVER_URL",
        description="the Dagster UI's address, for the links in alerts",
    )

    @model_validator(mode="before")
    @classmethod
    def _blank_is_unset(cls, values: Any) -> Any:
        # A variable set to spaces is as good as unset, as an empty one is.
        if isinstance(values, dict):
            return {name: value for name, value in values.items() if not _is_blank(value)}
        return values

    @field_validator("snapshot_cleanup_timezone")
    @classmethod
    def _iana_time_zone(cls, name: str) -> str:
        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError("is not an IANA time zone name (for example 'Europe/Oslo' or 'UTC')") from None
        return name

    @property
    def email_parser_database_variable(self) -> str:
        """The variable holding the Email Parser's database URL: its own when set, else the platform's."""
        return EMAIL_PARSER_DATABASE_URL if self.email_parser_database_url else JOBS_DATABASE_URL


def _is_blank(value: object) -> bool:
    return isinstance(value, str) and not value.strip()


def load_settings() -> Settings:
    """The settings as the environment holds them now; raises SettingsError on a bad value."""
    try:
        return Settings()
    except ValidationError as error:
        raise SettingsError(describe(error)) from None


def describe(error: ValidationError) -> str:
    """One clause per bad variable: its name, its value unless the field is a secret, and what is wrong."""
    problems = []
    for detail in error.errors(include_url=False):
        name = ".".join(str(part) for part in detail["loc"])
        message = detail["msg"].removeprefix("Value error, ")
        if name in SECRET_VARIABLES or "input" not in detail:
            problems.append(f"{name}: {message}")
        else:
            problems.append(f"{name}={detail['input']!r}: {message}")
    return "bad environment: " + "; ".join(problems)


def variable(field: str) -> str:
    """The environment variable a `Settings` field is read from."""
    alias = Settings.model_fields[field].alias
    if alias is None:
        raise KeyError(f"Settings.{field} names no environment variable")
    return alias


VARIABLES: tuple[str, ...] = tuple(variable(field) for field in Settings.model_fields)
"""Every variable the project reads, in the order of `Settings`."""
SECRET_VARIABLES: frozenset[str] = frozenset(
    variable(field)
    for field, info in Settings.model_fields.items()
    if info.annotation is SecretStr or SecretStr in get_args(info.annotation)
)
"""The variables whose values are secrets (`SecretStr`): never printed, not even in an error."""
DEFAULTS = Settings.model_construct()
"""The defaults alone, nothing read from the environment: for code that needs a default as a value."""

JOBS_DATABASE_URL = variable("jobs_database_url")
EMAIL_PARSER_DATABASE_URL = variable("email_parser_database_url")
JOBS_QUEUE_URL = variable("jobs_queue_url")
JOBS_DEAD_LETTER_QUEUE_URL = variable("jobs_dead_letter_queue_url")
CHANGELOG_TOPIC_ARN = variable("changelog_topic_arn")
AWS_REGION = variable("aws_region")
AWS_ENDPOINT_URL = variable("aws_endpoint_url")
TIMESERIES_BUCKET = variable("timeseries_bucket")
SNAPSHOT_STORAGE_URL = variable("snapshot_storage_url")
SNAPSHOT_RETENTION_DAYS = variable("snapshot_retention_days")
SNAPSHOT_CLEANUP_TIMEZONE = variable("snapshot_cleanup_timezone")
AZURE_STORAGE_CONNECTION_STRING = variable("azure_storage_connection_string")
JOBS_INTAKE_BATCH_SIZE = variable("jobs_intake_batch_size")
JOBS_INTAKE_CHANGELOG_BATCH_SIZE = variable("jobs_intake_changelog_batch_size")
JOBS_INTAKE_INTERVAL_SECONDS = variable("jobs_intake_interval_seconds")
ALERTS_TOPIC_ARN = variable("alerts_topic_arn")
DAGSTER_WEBSERVER_URL = variable("dagster_webserver_url")

DATABASE_KINDS = {"postgresql": "postgres", "sqlite": "sqlite"}


def database_kind(url: SecretStr | None) -> str | None:
    """The kind of database the URL names (`postgres`, `sqlite`), for the UI's asset kinds; None when
    unset or another kind. Only the URL's scheme is looked at, never kept with the rest (which may hold
    a password)."""
    scheme = url.get_secret_value().split(":", 1)[0] if url else ""
    return DATABASE_KINDS.get(scheme.split("+", 1)[0].strip().lower())
