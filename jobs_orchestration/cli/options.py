"""What a command takes from the settings when its option is not given."""

from __future__ import annotations

import click

from jobs_orchestration import settings


def current_settings() -> settings.Settings:
    """The settings as the environment holds them when the command starts; a bad value is a usage
    error naming the variable."""
    try:
        return settings.load_settings()
    except settings.SettingsError as error:
        raise click.UsageError(str(error)) from None


def database_url_or_setting(given: str | None) -> str | None:
    """The URL given on the command line, else JOBS_DATABASE_URL's, else None."""
    if given:
        return given
    configured = current_settings().jobs_database_url
    return configured.get_secret_value() if configured else None


def required_database_url(given: str | None, option: str) -> str:
    url = database_url_or_setting(given)
    if not url:
        raise click.UsageError(f"give {option} or set {settings.JOBS_DATABASE_URL}")
    return url


DATABASE_URL_DEFAULT = f"Default: ${settings.JOBS_DATABASE_URL}."
