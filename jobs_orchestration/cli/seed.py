from __future__ import annotations

import click

from jobs_orchestration import settings
from jobs_orchestration.aws.clients import aws_client
from jobs_orchestration.cli.options import DATABASE_URL_DEFAULT, current_settings, required_database_url
from jobs_orchestration.db.engine import create_db_engine, redacted
from jobs_orchestration.devstack.seed import SeedSizes, http_object_writer, seed_email_parser, seed_platform
from jobs_orchestration.snapshots.store import open_snapshot_store


@click.command()
@click.option("--database-url", help=f"The migrated database. {DATABASE_URL_DEFAULT}")
@click.option("--organizations", default=3, show_default=True)
@click.option(
    "--datasets", "datasets_per_organization", default=2, show_default=True, help="Per organization."
)
@click.option("--packages", "packages_per_dataset", default=12, show_default=True, help="Per dataset.")
@click.option("--files", "files_per_package", default=2, show_default=True, help="Per leaf package.")
@click.option("--depth", default=3, show_default=True, help="Deepest package tree.")
@click.option("--snapshots", default=40, show_default=True)
@click.option("--no-objects", is_flag=True, help="Write rows only, no S3 objects or snapshot files.")
@click.option("--random-seed", default=7, show_default=True)
def seed(database_url: str | None, no_objects: bool, random_seed: int, snapshots: int, **sizes: int) -> None:
    """Add demo data to a migrated database, with its objects in S3 (AWS_ENDPOINT_URL honoured)."""
    database_url = required_database_url(database_url, "--database-url")
    seed_sizes = SeedSizes(**sizes, snapshots=snapshots, seed=random_seed)
    engine = create_db_engine(database_url)
    try:
        with engine.begin() as connection:
            if no_objects:
                platform = seed_platform(connection, seed_sizes)
            else:
                with http_object_writer(aws_client("s3")) as write:
                    platform = seed_platform(connection, seed_sizes, write)
            store = open_snapshot_store(_snapshot_url(), s3_client_factory=lambda: aws_client("s3"))
            parser = seed_email_parser(connection, store, seed_sizes, write_files=not no_objects)
    finally:
        engine.dispose()
    click.echo(f"seeded {redacted(database_url)}: {platform.rows | parser.rows}, {platform.objects} objects")


def _snapshot_url() -> str:
    url = current_settings().snapshot_storage_url
    if not url:
        raise click.UsageError(f"set {settings.SNAPSHOT_STORAGE_URL} (file:///path or s3://bucket/prefix)")
    return url
