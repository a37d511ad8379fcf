"""Schema migrations of both databases, through Alembic, callable from code and the command line.

The platform and the Email Parser are separate Alembic branches (labels `platform` and `email_parser`),
so each database gets only its own tables; a database that serves both gets both branches.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from alembic import command
from alembic.config import Config

from jobs_orchestration.db.engine import create_db_engine

DOMAINS = ("platform", "email_parser")
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option(
        "version_locations",
        " ".join(str(MIGRATIONS_DIR / "versions" / domain) for domain in DOMAINS),
    )
    config.set_main_option("path_separator", "space")
    return config


def upgrade(url: str, domains: Iterable[str] = DOMAINS, revision: str = "head") -> None:
    for domain in _checked(domains):
        _run(url, command.upgrade, f"{domain}@{revision}")


def downgrade(url: str, domains: Iterable[str] = DOMAINS, revision: str = "base") -> None:
    for domain in _checked(domains):
        _run(url, command.downgrade, f"{domain}@{revision}")


def _checked(domains: Iterable[str]) -> list[str]:
    chosen = list(domains)
    unknown = sorted(set(chosen) - set(DOMAINS))
    if unknown:
        raise ValueError(f"unknown database domain(s) {unknown}; expected some of {list(DOMAINS)}")
    return chosen


def _run(url: str, alembic_command, target: str) -> None:
    config = alembic_config()
    engine = create_db_engine(url)
    try:
        with engine.begin() as connection:
            # The connection travels in attributes so the URL (and its password) never enters the config.
            config.attributes["connection"] = connection
            alembic_command(config, target)
    finally:
        engine.dispose()
