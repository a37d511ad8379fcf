from __future__ import annotations

import click

from jobs_orchestration.cli.options import DATABASE_URL_DEFAULT, required_database_url
from jobs_orchestration.db import migrate
from jobs_orchestration.db.engine import redacted

url_option = click.option(
    "--url",
    help=f"Database URL, PostgreSQL or SQLite. {DATABASE_URL_DEFAULT}",
)
domain_option = click.option(
    "--domain",
    "domains",
    type=click.Choice(migrate.DOMAINS),
    multiple=True,
    help="Which tables to migrate (repeatable); both by default.",
)


@click.group()
def db() -> None:
    """Database schema migrations."""


@db.command()
@url_option
@domain_option
def upgrade(url: str | None, domains: tuple[str, ...]) -> None:
    """Migrate a database to the newest schema."""
    url = required_database_url(url, "--url")
    migrate.upgrade(url, domains or migrate.DOMAINS)
    click.echo(f"migrated {redacted(url)} ({', '.join(domains or migrate.DOMAINS)})")


@db.command()
@url_option
@domain_option
@click.option("--revision", default="base", show_default=True, help="Revision to go back to.")
@click.confirmation_option(prompt="This drops tables and their data. Continue?")
def downgrade(url: str | None, domains: tuple[str, ...], revision: str) -> None:
    """Migrate a database back (to nothing, by default)."""
    url = required_database_url(url, "--url")
    migrate.downgrade(url, domains or migrate.DOMAINS, revision)
    click.echo(f"downgraded {redacted(url)} to {revision}")
