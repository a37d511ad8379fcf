"""Changelog recording and publishing: the job's own path, against per-event baselines measured in the
same run.

    python benchmarks/changelog_record_publish.py --events 1000

Needs PostgreSQL at 127.0.0.1:5432 (JOBS_TEST_POSTGRES_URL); starts its own moto server. The headline
times what `dataset_changelog_job` runs for a batch of messages: `record_messages` in one transaction
of the `PlatformDatabase` resource (with the run id and fallback job ids the op passes), then
`publish_outbox` through the `SNSResource` client, as its two ops call them. Against:
- recording: one INSERT statement per event (the original's per-event inserts);
- publishing: one Publish call per event.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa  # noqa: E402

from jobs_orchestration.changelog.publish import message_attributes, message_body, publish_outbox  # noqa: E402
from jobs_orchestration.changelog.record import IncomingEvent, IncomingMessage, insert_events, record_messages  # noqa: E402
from jobs_orchestration.db.migrate import upgrade  # noqa: E402
from jobs_orchestration.db.platform import DatasetChangelogEvent  # noqa: E402
from jobs_orchestration.defs.resources import PlatformDatabase, SNSResource  # noqa: E402
from jobs_orchestration.devstack.aws import LOCAL_CREDENTIALS, provision, start_moto_server  # noqa: E402
from jobs_orchestration_tests.support.changelog import (  # noqa: E402
    DATASET_ID,
    ORGANIZATION_ID,
    USER_NODE_ID,
    seed_platform,
)
from jobs_orchestration_tests.support.postgres import temporary_database  # noqa: E402


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
    load_before = os.getloadavg()
    server, endpoint = start_moto_server()
    try:
        aws = provision(endpoint)
        with temporary_database("jobs_bench") as url:
            upgrade(url, ["platform"])
            # The resources the job's ops get, configured as `resources_from_environment` does.
            platform_db = PlatformDatabase(url=url)
            sns_resource = SNSResource(topic_arn=aws.topic_arn, region_name=aws.region, endpoint_url=endpoint)
            with platform_db.begin() as connection:
                seed_platform(connection)
            batch = messages(args.events, "job")
            run_id = str(uuid.uuid4())

            # The job's path: record_changelog_events, then publish_changelog_events.
            started = time.perf_counter()
            with platform_db.begin() as connection:
                recorded = record_messages(
                    connection,
                    batch,
                    fallback_job_ids=[f"run-{run_id}-{index}" for index in range(len(batch))],
                    dagster_run_id=run_id,
                )
            job_record = time.perf_counter() - started
            assert recorded.inserted == args.events and not recorded.refused
            started = time.perf_counter()
            report = publish_outbox(
                platform_db.engine,
                sns_resource.get_client(),
                sns_resource.topic_arn,
                event_ids=recorded.event_ids,
            )
            job_publish = time.perf_counter() - started
            assert report.published == args.events and not report.failed, report

            # Baseline of recording: the same rows, one INSERT statement each.
            with platform_db.begin() as connection:
                rows = [
                    dict(row._mapping)
                    for row in connection.execute(sa.select(DatasetChangelogEvent.__table__)).all()
                ]
            for row in rows:
                row.pop("id")
                row["event_id"] = "baseline-" + row["event_id"]
            started = time.perf_counter()
            with platform_db.begin() as connection:
                for row in rows:
                    connection.execute(sa.insert(DatasetChangelogEvent), row)
            per_row_insert = time.perf_counter() - started
            for row in rows:
                row["event_id"] = "multi-" + row["event_id"]
            started = time.perf_counter()
            with platform_db.begin() as connection:
                assert insert_events(connection, rows) == len(rows)
            multi_row_insert = time.perf_counter() - started

            # Baseline of publishing: one Publish call per event, same client.
            sns = sns_resource.get_client()
            started = time.perf_counter()
            for row in rows:
                sns.publish(
                    TopicArn=sns_resource.topic_arn,
                    Message=message_body(_Row(row)),
                    MessageAttributes=message_attributes(_Row(row)),
                )
            per_event_publish = time.perf_counter() - started
            platform_db.engine.dispose()
    finally:
        server.stop()

    n = args.events
    job_total = job_record + job_publish
    print(
        f"events: {n} (messages of 10 events); load average before {_load(load_before)}, after {_load(os.getloadavg())}"
    )
    print(
        f"job path (record_messages + publish_outbox through PlatformDatabase and SNSResource): "
        f"{job_total:.3f}s ({n / job_total:,.0f} events/s)"
    )
    print(
        f"  record_messages (validate, check references, insert, audit rows): {job_record:.3f}s "
        f"({n / job_record:,.0f}/s)  one INSERT per event baseline: {per_row_insert:.3f}s "
        f"({n / per_row_insert:,.0f}/s)  ratio {per_row_insert / job_record:.1f}x"
    )
    print(
        f"  publish_outbox (PublishBatch x10, marking rows): {job_publish:.3f}s ({n / job_publish:,.0f}/s)  "
        f"one Publish per event baseline: {per_event_publish:.3f}s ({n / per_event_publish:,.0f}/s)  "
        f"ratio {per_event_publish / job_publish:.1f}x"
    )
    print(
        f"  (insert_events alone, the multi-row INSERT inside record_messages: {multi_row_insert:.3f}s, "
        f"{per_row_insert / multi_row_insert:.1f}x the per-event INSERTs)"
    )


def _load(values: tuple[float, float, float]) -> str:
    return " ".join(f"{value:.1f}" for value in values)


class _Row:
    def __init__(self, values: dict) -> None:
        self.__dict__.update(values)


if __name__ == "__main__":
    main()
