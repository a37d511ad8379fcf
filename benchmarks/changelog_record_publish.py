"""Changelog recording and publishing: figures against a per-row baseline measured in the same run.

    python benchmarks/changelog_record_publish.py --events 1000

Needs PostgreSQL at 127.0.0.1:5432 (JOBS_TEST_POSTGRES_URL); starts its own moto server. Prints:
- recording: one multi-row INSERT per run (record_messages) against one INSERT per event;
- publishing: PublishBatch, 10 a call (publish_outbox) against one Publish call per event.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time

import sqlalchemy as sa

from jobs_orchestration.changelog.publish import message_attributes, message_body, publish_outbox
from jobs_orchestration.changelog.record import IncomingEvent, IncomingMessage, insert_events, record_messages
from jobs_orchestration.db.migrate import upgrade
from jobs_orchestration.db.platform import DatasetChangelogEvent
from jobs_orchestration.devstack.aws import LOCAL_CREDENTIALS, provision, start_moto_server
from jobs_orchestration_tests.support.changelog import (
    DATASET_ID,
    ORGANIZATION_ID,
    USER_NODE_ID,
    seed_platform,
)
from jobs_orchestration_tests.support.postgres import temporary_database


def messages(count: int, job_prefix: str) -> list[IncomingMessage]:
    """Messages of 10 events each, as the SQS sensor batches them."""
    result = []
    for start in range(0, count, 10):
        events = [
            IncomingEvent("ADD_TAG", json.dumps({"name": f"tag-{index}"}), "2021-06-01T12:00:00Z")
            for index in range(start, min(start + 10, count))
        ]
        result.append(
            IncomingMessage(ORGANIZATION_ID, DATASET_ID, USER_NODE_ID, events, f"{job_prefix}-{start}")
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000, help="events per measurement (default 1000)")
    args = parser.parse_args()
    os.environ.update(LOCAL_CREDENTIALS)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server, endpoint = start_moto_server()
    try:
        aws = provision(endpoint)
        sns = aws.client("sns")
        with temporary_database("jobs_bench") as url:
            upgrade(url, ["platform"])
            engine = sa.create_engine(url)
            with engine.begin() as connection:
                seed_platform(connection)

            started = time.perf_counter()
            with engine.begin() as connection:
                recorded = record_messages(connection, messages(args.events, "batched"))
            batched_record = time.perf_counter() - started
            assert recorded.inserted == args.events

            # Baseline: the same rows, one INSERT statement each (as the original's per-event inserts).
            with engine.begin() as connection:
                rows = [
                    dict(row._mapping)
                    for row in connection.execute(sa.select(DatasetChangelogEvent.__table__)).all()
                ]
            for row in rows:
                row.pop("id")
                row["event_id"] = "baseline-" + row["event_id"]
            started = time.perf_counter()
            with engine.begin() as connection:
                for row in rows:
                    connection.execute(sa.insert(DatasetChangelogEvent), row)
            per_row_insert = time.perf_counter() - started
            for row in rows:
                row["event_id"] = "multi-" + row["event_id"]
            started = time.perf_counter()
            with engine.begin() as connection:
                assert insert_events(connection, rows) == len(rows)
            multi_row_insert = time.perf_counter() - started

            started = time.perf_counter()
            report = publish_outbox(engine, sns, aws.topic_arn, event_ids=recorded.event_ids)
            batched_publish = time.perf_counter() - started
            assert report.published == args.events, report

            started = time.perf_counter()
            for row in rows:
                sns.publish(
                    TopicArn=aws.topic_arn,
                    Message=message_body(_Row(row)),
                    MessageAttributes=message_attributes(_Row(row)),
                )
            per_event_publish = time.perf_counter() - started
            engine.dispose()
    finally:
        server.stop()

    n = args.events
    print(f"events: {n}")
    print(
        f"record_messages (validate, check references, insert): {batched_record:.3f}s ({n / batched_record:,.0f}/s)"
    )
    print(
        f"insert  multi-row: {multi_row_insert:.3f}s ({n / multi_row_insert:,.0f}/s)  "
        f"one INSERT per event baseline: {per_row_insert:.3f}s ({n / per_row_insert:,.0f}/s)  "
        f"ratio {per_row_insert / multi_row_insert:.1f}x"
    )
    print(
        f"publish PublishBatch x10: {batched_publish:.3f}s ({n / batched_publish:,.0f}/s, incl. marking rows)  "
        f"one Publish per event baseline: {per_event_publish:.3f}s ({n / per_event_publish:,.0f}/s)  "
        f"ratio {per_event_publish / batched_publish:.1f}x"
    )


class _Row:
    def __init__(self, values: dict) -> None:
        self.__dict__.update(values)


if __name__ == "__main__":
    main()
