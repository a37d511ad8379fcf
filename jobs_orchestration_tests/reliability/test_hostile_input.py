"""Hostile message bodies: each is refused with a reason naming what is wrong, dead-lettered with that
reason by the sensor, and never stops the valid messages around it."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from jobs_orchestration.intake.messages import MessageRejected, parse_job_message
from jobs_orchestration_tests.intake.conftest import intake_definitions
from jobs_orchestration_tests.support.hostile_messages import HOSTILE_MESSAGES, VALID_MESSAGES, HostileMessage
from jobs_orchestration_tests.support.queue import counts, send

MAX_TICKS = 25


def test_the_corpus_is_large_and_labelled() -> None:
    assert len(HOSTILE_MESSAGES) >= 100
    labels = [message.label for message in HOSTILE_MESSAGES]
    assert len(set(labels)) == len(labels), "labels must be unique"
    assert {json.loads(body).popitem()[0] for _, body in VALID_MESSAGES} == {
        "DeletePackageJob",
        "DeleteDatasetJob",
        "CachePopulationJob",
        "DatasetChangelogEventJob",
    }


@pytest.mark.parametrize("message", HOSTILE_MESSAGES, ids=lambda message: message.label)
def test_a_hostile_body_is_refused_with_a_reason_naming_the_fault(message: HostileMessage) -> None:
    with pytest.raises(MessageRejected) as refused:
        parse_job_message(message.body)
    assert message.reason_names in refused.value.reason


@pytest.mark.parametrize(("label", "body"), VALID_MESSAGES, ids=[label for label, _ in VALID_MESSAGES])
def test_a_valid_body_with_hostile_looking_text_is_accepted_unchanged(label: str, body: str) -> None:
    job = parse_job_message(body)
    fields = json.loads(body).popitem()[1]
    assert job.id == fields["id"]
    if "userId" in fields:
        assert job.user_id == fields["userId"]


def test_hostile_and_valid_messages_interleaved_drain_through_the_sensor(local_aws, tick, instance) -> None:
    sqs = local_aws.client("sqs")
    huge = [m for m in HOSTILE_MESSAGES if len(m.body.encode()) > 64 * 1024]
    small = [m for m in HOSTILE_MESSAGES if m not in huge]
    valid_bodies = [body for _, body in VALID_MESSAGES]
    interleaved: list[str] = []
    for index, hostile in enumerate(small):
        interleaved.append(hostile.body or "")
        if index % 10 == 0 and valid_bodies:
            interleaved.append(valid_bodies.pop())
    interleaved.extend(valid_bodies)
    # SQS refuses an empty body at send time, so that case cannot reach the queue; the parser test covers it.
    send(local_aws, *[body for body in interleaved if body])
    for message in huge:  # a batch holds at most 256 KiB in all
        sqs.send_message(QueueUrl=local_aws.queue_url, MessageBody=message.body)

    defs = intake_definitions(local_aws)
    cursor = None
    requests = []
    for _ in range(MAX_TICKS):
        result = tick(cursor)  # a tick that raises fails the test here
        cursor = result.cursor
        _create_runs(instance, defs, result)
        requests.extend(result.run_requests)
        if counts(local_aws, local_aws.queue_url) == (0, 0):
            break
    assert counts(local_aws, local_aws.queue_url) == (0, 0), "the queue did not drain"

    expected = {m.body for m in HOSTILE_MESSAGES if m.body}
    dead = _drain_dead_letters(local_aws)
    assert set(dead) == expected
    reasons_by_body = {m.body: m.reason_names for m in HOSTILE_MESSAGES}
    for body, reason in dead.items():
        assert reasons_by_body[body] in reason, (body[:80], reason)

    produced = {job_id for request in requests for job_id in request.tags["producer_job_ids"].split(",")}
    assert produced == {json.loads(body).popitem()[1]["id"] for _, body in VALID_MESSAGES}
    for request in requests:
        assert instance.get_runs_count(dg.RunsFilter(tags={"dagster/run_key": request.run_key})) == 1


def _drain_dead_letters(local_aws) -> dict[str, str]:
    sqs = local_aws.client("sqs")
    dead: dict[str, str] = {}
    while True:
        messages = sqs.receive_message(
            QueueUrl=local_aws.dead_letter_queue_url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not messages:
            return dead
        for message in messages:
            assert message["Body"] not in dead, "dead-lettered twice"
            dead[message["Body"]] = message["MessageAttributes"]["reason"]["StringValue"]


def _create_runs(instance: dg.DagsterInstance, defs: dg.Definitions, result: dg.SensorResult) -> None:
    """What the daemon does with a tick's result: add the partitions, then one run per request,
    carrying its run key."""
    for add in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(add.partitions_def_name, list(add.partition_keys))
    for request in result.run_requests:
        run = defs.resolve_job_def(request.job_name).execute_in_process(
            run_config=request.run_config,
            instance=instance,
            tags={**request.tags, "dagster/run_key": request.run_key},
            partition_key=request.partition_key,
        )
        assert run.success
