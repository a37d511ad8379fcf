import json

import pytest
import sqlalchemy as sa

from jobs_orchestration.changelog.publish import publish_outbox
from jobs_orchestration.changelog.record import IncomingEvent, IncomingMessage, event_id_for, record_messages
from jobs_orchestration.db.platform import DatasetChangelogEvent as Event
from jobs_orchestration.db.platform import JobAuditLog
from jobs_orchestration_tests.support.changelog import (
    DATASET_ID,
    ORGANIZATION_ID,
    OTHER_ORGANIZATION_DATASET_ID,
    SAMPLE_DETAILS,
    USER_NODE_ID,
)

JOB_ID = "8d0e5c1a-0000-4000-8000-000000000001"


def message(*events: IncomingEvent, job_id: str = JOB_ID, **overrides) -> IncomingMessage:
    fields = {
        "organization_id": ORGANIZATION_ID,
        "dataset_id": DATASET_ID,
        "user_node_id": USER_NODE_ID,
        "job_id": job_id,
        "trace_id": "trace-1",
        "events": events
        or (IncomingEvent("UPDATE_NAME", '{"oldName": "a", "newName": "b"}', "2021-06-01T12:00Z[UTC]"),),
    }
    return IncomingMessage(**{**fields, **overrides})


def record(db, *messages: IncomingMessage):
    with db.begin() as connection:
        return record_messages(connection, list(messages))


def publish(db, client, topic_arn, result=None, **options):
    options.setdefault("retry_delay_seconds", 0)
    event_ids = result.event_ids if result is not None else None
    return publish_outbox(db.engine, client, topic_arn, event_ids=event_ids, **options)


def stored(db):
    with db.begin() as connection:
        return connection.execute(sa.select(Event).order_by(Event.id)).all()


def test_every_event_type_round_trips_to_a_subscriber(seeded_db, sns_client, local_aws, subscriber):
    events = [
        IncomingEvent(name, json.dumps(detail), "2021-06-01T12:00:00Z")
        for name, detail in SAMPLE_DETAILS.items()
    ]
    result = record(seeded_db, message(*events))
    report = publish(seeded_db, sns_client, local_aws.topic_arn, result)

    assert (result.inserted, report.published, report.failed) == (len(events), len(events), 0)
    rows = {row.event_id: row for row in stored(seeded_db)}
    deliveries = {delivery.attributes["eventId"]: delivery for delivery in subscriber.drain()}
    assert set(deliveries) == set(rows) == {event_id_for(JOB_ID, index) for index in range(len(events))}
    for index, (event_type, detail) in enumerate(SAMPLE_DETAILS.items()):
        row = rows[event_id_for(JOB_ID, index)]
        delivery = deliveries[row.event_id]
        assert (row.event_type, row.detail, row.user_id) == (event_type, detail, 1)
        assert row.published_at is not None and row.publish_attempts == 1 and row.last_publish_error is None
        assert list(delivery.body) == [
            "datasetId",
            "organizationId",
            "eventCategory",
            "eventType",
            "eventDetail",
        ]
        assert delivery.body == {
            "datasetId": str(DATASET_ID),
            "organizationId": str(ORGANIZATION_ID),
            "eventCategory": row.event_category,
            "eventType": event_type,
            "eventDetail": detail,
        }
        assert delivery.attributes == {
            "eventId": row.event_id,
            "eventType": event_type,
            "eventCategory": row.event_category,
            "organizationId": str(ORGANIZATION_ID),
            "datasetId": str(DATASET_ID),
        }


def test_restore_package_and_update_changelog_are_stored_and_published_with_their_category(
    seeded_db, sns_client, local_aws, subscriber
):
    restore = {"id": 42, "nodeId": "N:package:1", "name": "scan (1).nii", "originalName": "scan.nii"}
    changelog = {"oldChangelog": "v1", "newChangelog": "v2"}
    result = record(
        seeded_db,
        message(
            IncomingEvent("RESTORE_PACKAGE", json.dumps(restore), "2021-06-01T12:00:00Z"),
            IncomingEvent("UPDATE_CHANGELOG", json.dumps(changelog), "2021-06-01T12:01:00Z"),
        ),
    )
    report = publish(seeded_db, sns_client, local_aws.topic_arn, result)

    assert result.refused == [] and (result.inserted, report.published, report.failed) == (2, 2, 0)
    expected = [
        ("RESTORE_PACKAGE", "FILES", {**restore, "parent": None}),
        ("UPDATE_CHANGELOG", "PUBLISHING", changelog),
    ]
    assert [(row.event_type, row.event_category, row.detail) for row in stored(seeded_db)] == expected
    deliveries = {delivery.body["eventType"]: delivery for delivery in subscriber.drain()}
    assert set(deliveries) == {"RESTORE_PACKAGE", "UPDATE_CHANGELOG"}
    for event_type, category, detail in expected:
        delivery = deliveries[event_type]
        assert (delivery.body["eventCategory"], delivery.body["eventDetail"]) == (category, detail)
        assert delivery.attributes["eventCategory"] == category


def test_a_redelivered_message_stores_and_publishes_nothing_new(seeded_db, sns_client, local_aws, subscriber):
    first = record(seeded_db, message())
    publish(seeded_db, sns_client, local_aws.topic_arn, first)
    assert len(subscriber.drain()) == 1

    again = record(seeded_db, message())
    report = publish(seeded_db, sns_client, local_aws.topic_arn, again)

    assert again.inserted == 0 and again.event_ids == first.event_ids
    assert report.published == 0
    assert len(stored(seeded_db)) == 1
    assert subscriber.drain() == []


def test_an_sns_failure_after_the_insert_leaves_the_row_for_a_later_run(
    seeded_db, sns_client, local_aws, subscriber, monkeypatch
):
    real_publish_batch = sns_client.publish_batch
    calls = []

    def outage(**request):
        calls.append(request)
        raise sns_client.exceptions.InternalErrorException(
            {"Error": {"Code": "InternalError", "Message": "SNS is down"}}, "PublishBatch"
        )

    monkeypatch.setattr(sns_client, "publish_batch", outage)
    result = record(seeded_db, message())
    report = publish(seeded_db, sns_client, local_aws.topic_arn, result, attempts=2)

    # The client made its own attempts at the failed call; publishing does not add more of its own.
    assert (report.published, report.failed) == (0, 1) and len(calls) == 1
    [row] = stored(seeded_db)
    assert row.published_at is None
    assert row.publish_attempts == 1 and "SNS is down" in row.last_publish_error
    assert subscriber.drain() == []

    monkeypatch.setattr(sns_client, "publish_batch", real_publish_batch)
    redelivered = record(seeded_db, message())  # the producer's retry, or the next run
    assert redelivered.inserted == 0
    assert publish(seeded_db, sns_client, local_aws.topic_arn, redelivered).published == 1
    assert publish(seeded_db, sns_client, local_aws.topic_arn).published == 0  # the sweep finds nothing

    [delivery] = subscriber.drain()
    assert delivery.attributes["eventId"] == row.event_id
    [row] = stored(seeded_db)
    assert row.published_at is not None and row.publish_attempts == 2 and row.last_publish_error is None


def test_a_partial_batch_failure_retries_only_the_failed_entries(
    seeded_db, sns_client, local_aws, subscriber, monkeypatch
):
    real_publish_batch = sns_client.publish_batch
    batches: list[list[str]] = []

    def first_call_drops_three(**request):
        entries = request["PublishBatchRequestEntries"]
        batches.append([entry["Id"] for entry in entries])
        if len(batches) > 1:
            return real_publish_batch(**request)
        response = real_publish_batch(**{**request, "PublishBatchRequestEntries": entries[3:]})
        response["Failed"] = [
            {"Id": entry["Id"], "Code": "Throttled", "Message": "slow down", "SenderFault": False}
            for entry in entries[:3]
        ]
        return response

    monkeypatch.setattr(sns_client, "publish_batch", first_call_drops_three)
    events = [IncomingEvent("ADD_TAG", json.dumps({"name": f"tag-{index}"})) for index in range(12)]
    result = record(seeded_db, message(*events))
    report = publish(seeded_db, sns_client, local_aws.topic_arn, result)

    assert [len(batch) for batch in batches] == [10, 2, 3]
    assert batches[2] == batches[0][:3]
    assert (report.published, report.failed) == (12, 0)
    deliveries = subscriber.drain()
    assert sorted(delivery.attributes["eventId"] for delivery in deliveries) == sorted(result.event_ids)


@pytest.mark.parametrize(
    ("bad_event", "reason"),
    [
        (
            IncomingEvent("UPDATE_NAME", '{"oldName": "a"}'),
            "events[1]: eventDetail of UPDATE_NAME is invalid: field 'newName' is required",
        ),
        (IncomingEvent("ADD_TAG", '{"name": '), "events[1].eventDetail is not valid JSON"),
        (IncomingEvent("TELEPORT", "{}"), "events[1]: eventType 'TELEPORT' is not a known"),
        (IncomingEvent("ADD_TAG", '{"name": "x"}', "last tuesday"), "events[1]: timestamp 'last tuesday'"),
    ],
)
def test_a_malformed_event_refuses_the_whole_message(seeded_db, bad_event, reason):
    good = IncomingEvent("CREATE_DATASET", "{}")
    result = record(seeded_db, message(good, bad_event))

    [outcome] = result.refused
    assert reason in outcome.refused_reason
    assert result.inserted == 0 and result.event_ids == []
    assert stored(seeded_db) == []


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"organization_id": 404}, "organizationId 404 does not exist"),
        ({"user_node_id": "N:user:nobody"}, "userId 'N:user:nobody' does not exist"),
        ({"dataset_id": 404}, "datasetId 404 does not exist in organization 7"),
        ({"dataset_id": OTHER_ORGANIZATION_DATASET_ID}, "datasetId 99 does not exist in organization 7"),
    ],
)
def test_an_unknown_organization_user_or_dataset_refuses_the_message(seeded_db, overrides, reason):
    result = record(seeded_db, message(**overrides))

    assert [outcome.refused_reason for outcome in result.refused] == [reason]
    assert stored(seeded_db) == []


def test_in_a_batch_each_message_is_judged_on_its_own(seeded_db, sns_client, local_aws, subscriber):
    good = message(job_id="job-good")
    bad = message(job_id="job-bad", dataset_id=404)
    result = record(seeded_db, good, bad)
    publish(seeded_db, sns_client, local_aws.topic_arn, result)

    assert [outcome.refused for outcome in result.outcomes] == [False, True]
    assert [row.job_id for row in stored(seeded_db)] == ["job-good"]
    assert len(subscriber.drain()) == 1
    with seeded_db.begin() as connection:
        audit = connection.execute(
            sa.select(JobAuditLog.job_id, JobAuditLog.outcome).order_by(JobAuditLog.id)
        ).all()
    assert audit == [("job-good", "recorded"), ("job-bad", "refused")]


def test_a_message_whose_rows_the_database_refuses_is_refused_alone(seeded_db):
    # The intake refuses such a trace id at the door; this is the last line behind it.
    too_long = message(job_id="job-too-long", trace_id="t" * 300)
    result = record(seeded_db, message(job_id="job-before"), too_long, message(job_id="job-after"))

    assert [outcome.refused for outcome in result.outcomes] == [False, True, False]
    assert result.outcomes[1].refused_reason.startswith(
        "the database refused its rows: StringDataRightTruncation"
    )
    assert [row.job_id for row in stored(seeded_db)] == ["job-before", "job-after"]
    with seeded_db.begin() as connection:
        audit = connection.execute(
            sa.select(JobAuditLog.job_id, JobAuditLog.outcome).order_by(JobAuditLog.id)
        ).all()
    assert audit == [("job-before", "recorded"), ("job-after", "recorded")]
    assert "its audit row was refused too" in result.outcomes[1].refused_reason


def test_rows_another_publisher_holds_are_skipped_not_published_twice(
    seeded_db, sns_client, local_aws, subscriber
):
    result = record(seeded_db, message(job_id="job-held"), message(job_id="job-free"))
    held, free = result.event_ids

    with seeded_db.engine.connect() as other_publisher, other_publisher.begin():
        other_publisher.execute(sa.select(Event.id).where(Event.event_id == held).with_for_update())
        report = publish(seeded_db, sns_client, local_aws.topic_arn)
    assert (report.published, report.failed) == (1, 0)
    assert [delivery.attributes["eventId"] for delivery in subscriber.drain()] == [free]

    assert publish(seeded_db, sns_client, local_aws.topic_arn).published == 1  # released: published once
    assert [delivery.attributes["eventId"] for delivery in subscriber.drain()] == [held]
