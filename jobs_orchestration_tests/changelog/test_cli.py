import json

import sqlalchemy as sa
from click.testing import CliRunner

from jobs_orchestration.changelog.record import IncomingEvent, IncomingMessage, record_messages
from jobs_orchestration.cli import main
from jobs_orchestration_tests.support.changelog import DATASET_ID, ORGANIZATION_ID, USER_NODE_ID


def record_tags(db, hours: list[int]) -> list[int]:
    """One ADD_TAG per hour given (out of order on purpose); returns the row ids in time order."""
    events = [
        IncomingEvent("ADD_TAG", json.dumps({"name": f"tag-{hour:02d}"}), f"2021-06-01T{hour:02d}:00:00Z")
        for hour in hours
    ]
    with db.begin() as connection:
        record_messages(
            connection, [IncomingMessage(ORGANIZATION_ID, DATASET_ID, USER_NODE_ID, events, "job-1")]
        )
        return list(
            connection.scalars(
                sa.text(
                    "SELECT id FROM dataset_changelog_timeline WHERE dataset_id = :d ORDER BY occurred_at, id"
                ),
                {"d": DATASET_ID},
            )
        )


def changelog(database_url: str, *args: str):
    result = CliRunner().invoke(
        main, ["changelog", "--url", database_url, "--dataset", str(DATASET_ID), *args]
    )
    return result


def tags_printed(output: str) -> list[str]:
    return [line.split('"name":"')[1].split('"')[0] for line in output.splitlines() if line.startswith("#")]


def test_the_cli_prints_the_timeline_in_time_order_with_paging(seeded_db, clean_database):
    ids = record_tags(seeded_db, [5, 1, 3, 2, 4])

    first = changelog(clean_database, "--limit", "2")
    assert first.exit_code == 0, first.output
    assert tags_printed(first.output) == ["tag-01", "tag-02"]
    assert "METADATA/ADD_TAG" in first.output and "by ada@example.org" in first.output
    assert "(unpublished)" in first.output
    assert f"next page: --after {ids[1]}" in first.output

    second = changelog(clean_database, "--limit", "2", "--after", str(ids[1]))
    assert tags_printed(second.output) == ["tag-03", "tag-04"]
    assert f"previous page: --before {ids[2]}" in second.output

    last = changelog(clean_database, "--limit", "2", "--after", str(ids[3]))
    assert tags_printed(last.output) == ["tag-05"] and "next page" not in last.output

    back = changelog(clean_database, "--limit", "2", "--before", str(ids[4]))
    assert tags_printed(back.output) == ["tag-03", "tag-04"]


def test_an_unknown_cursor_or_empty_dataset_is_reported(seeded_db, clean_database):
    empty = changelog(clean_database)
    assert empty.exit_code == 0 and "no changelog events for dataset 13" in empty.output

    wrong = changelog(clean_database, "--after", "12345")
    assert wrong.exit_code == 2 and "cursor 12345 is not an event of dataset 13" in wrong.output
