"""Alembic environment: runs on the connection handed in by jobs_orchestration.db.migrate."""

from alembic import context

from jobs_orchestration.db.schema import all_metadata

target_metadata = list(all_metadata)


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(
            "run migrations through `jobs-orchestration db upgrade` (jobs_orchestration.db.migrate)"
        )
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
