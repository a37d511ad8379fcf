from __future__ import annotations

from pathlib import Path

import click

from jobs_orchestration.cli.options import DATABASE_URL_DEFAULT, database_url_or_setting
from jobs_orchestration.devstack.seed import SeedSizes
from jobs_orchestration.devstack.stack import LocalStack


@click.command()
@click.option("--port", default=3000, show_default=True, help="Port of the Dagster UI.")
@click.option(
    "--database-url",
    help=f"Platform and Email Parser database. {DATABASE_URL_DEFAULT} If unset, a SQLite file under .local/.",
)
@click.option("--no-seed", is_flag=True, help="Do not add demo data.")
@click.option("--reset", is_flag=True, help="Also forget the local Dagster instance (run history).")
@click.option(
    "--aws",
    "aws_emulator",
    type=click.Choice(["moto", "localstack"]),
    default="moto",
    show_default=True,
    help="The local AWS: moto in this process, or LocalStack as a child process (`make localstack`).",
)
def dev(port: int, database_url: str | None, no_seed: bool, reset: bool, aws_emulator: str) -> None:
    """Run the whole system locally: local AWS, database, demo data, Dagster UI and daemon."""
    database_url = database_url_or_setting(database_url)
    stack = LocalStack(
        database_url=database_url,
        ui_port=port,
        seed=None if no_seed else SeedSizes(),
        aws_emulator=aws_emulator,
    )
    if reset:
        _remove_local_state(stack)
    elif database_url is None:
        # The local AWS lives in memory, so the local database starts afresh with it: rows kept from
        # an earlier start would point at objects that no longer exist. Run history is kept.
        _remove_local_data(stack)
    with stack:
        click.echo(f"\nDagster UI: {stack.ui_url}")
        click.echo(f"Environment for other shells: source {stack.workdir / 'env'} (removed when it stops)")
        click.echo("Ctrl-C stops everything.\n")
        stack.run_forever()


def _remove_local_data(stack: LocalStack) -> None:
    import shutil

    (stack.workdir / "jobs.db").unlink(missing_ok=True)
    shutil.rmtree(stack.workdir / "snapshots", ignore_errors=True)


def _remove_local_state(stack: LocalStack) -> None:
    import shutil

    for path in (stack.workdir, stack.dagster_home):
        if Path(path).exists():
            shutil.rmtree(path)
