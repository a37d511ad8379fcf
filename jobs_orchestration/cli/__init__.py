"""`jobs-orchestration`: the command line for people running the project."""

import click

from jobs_orchestration.cli.changelog import changelog
from jobs_orchestration.cli.db import db
from jobs_orchestration.cli.dev import dev
from jobs_orchestration.cli.queue import dlq, enqueue
from jobs_orchestration.cli.seed import seed


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Background jobs of the data platform, on Dagster."""


main.add_command(db)
main.add_command(dev)
main.add_command(seed)
main.add_command(changelog)
main.add_command(enqueue)
main.add_command(dlq)
