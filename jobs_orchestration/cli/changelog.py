"""`jobs-orchestration changelog`: a dataset's changelog (its audit trail) in time order."""

from __future__ import annotations

import json

import click

from jobs_orchestration.changelog.timeline import UnknownCursor, read_timeline
from jobs_orchestration.cli.db import url_option
from jobs_orchestration.cli.options import required_database_url
from jobs_orchestration.db.engine import create_db_engine


@click.command()
@url_option
@click.option("--dataset", "dataset_id", type=int, required=True, help="Id of the dataset.")
@click.option(
    "--limit", type=click.IntRange(1, 10_000), default=50, show_default=True, help="Events per page."
)
@click.option("--after", type=int, help="Cursor: show the events after this event id (next page).")
@click.option("--before", type=int, help="Cursor: show the events before this event id (previous page).")
def changelog(url: str | None, dataset_id: int, limit: int, after: int | None, before: int | None) -> None:
    """Print a dataset's changelog events in time order, a page at a time."""
    if after is not None and before is not None:
        raise click.UsageError("give --after or --before, not both")
    engine = create_db_engine(required_database_url(url, "--url"))
    try:
        with engine.connect() as connection:
            page = read_timeline(connection, dataset_id, limit=limit, after=after, before=before)
    except UnknownCursor as error:
        raise click.BadParameter(str(error), param_hint="--after/--before") from None
    finally:
        engine.dispose()
    if not page.events:
        click.echo(f"no changelog events for dataset {dataset_id} on this page")
        return
    for event in page.events:
        published = "published" if event.published_at else "unpublished"
        who = event.user_email or event.user_node_id
        detail = json.dumps(event.detail, separators=(",", ":"), sort_keys=True)
        click.echo(
            f"#{event.id}  {event.occurred_at.isoformat()}  {event.event_category}/{event.event_type}"
            f"  by {who}  ({published})  {detail}"
        )
    if page.has_more_before:
        click.echo(f"previous page: --before {page.events[0].id}")
    if page.has_more_after:
        click.echo(f"next page: --after {page.events[-1].id}")
