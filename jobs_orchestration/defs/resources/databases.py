from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from pydantic import PrivateAttr
from sqlalchemy import Connection
from sqlalchemy.engine import Engine

from jobs_orchestration.db.engine import create_db_engine


class DatabaseResource(dg.ConfigurableResource):
    """A SQLAlchemy engine for one database, created once per process and disposed on teardown."""

    url: str

    _engine: Engine | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._engine = create_db_engine(self.url)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            # Used outside a run or tick (a direct call in a test or a script).
            self._engine = create_db_engine(self.url)
        return self._engine

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection inside a transaction that commits on success and rolls back on error."""
        with self.engine.begin() as connection:
            yield connection


class PlatformDatabase(DatabaseResource):
    """The research-data platform's database (`JOBS_DATABASE_URL`)."""


class EmailParserDatabase(DatabaseResource):
    """The Email Parser's database (`EMAIL_PARSER_DATABASE_URL`, else the platform's)."""
