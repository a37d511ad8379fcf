"""Hostile message bodies: each is refused with exactly the reason the corpus gives for it, dead-lettered
with that reason by the sensor tick that received it, never seen again on the main queue, and never
stops the valid messages around it."""

from __future__ import annotations

import json
from typing import Any

import dagster as dg
import pytest

from jobs_orchestration.defs.resources import SQSResource
from jobs_orchestration.intake.dead_letters import MAX_ATTRIBUTE_CHARS
from jobs_orchestration.intake.messages import MessageRejected, parse_job_message
from jobs_orchestration_tests.intake.conftest import intake_definitions
from jobs_orchestration_tests.support.faults import wrap_clients
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
def test_a_hostile_body_is_refused_with_the_reason_naming_the_fault(message: HostileMessage) -> None:
    with pytest.raises(MessageRejected) as refused:
        parse_job_message(message.body)
    assert message.reason_matches(refused.value.reason), (refused.value.reason, message.reason)
    assert len(refused.value.reason) <= MAX_ATTRIBUTE_CHARS, "the dead letter's attribute would cut it"


@pytest.mark.parametrize(("label", "body"), VALID_MESSAGES, ids=[label for label, _ in VALID_MESSAGES])
def test_a_valid_body_with_hostile_looking_text_is_accepted_unchanged(label: str, body: str) -> None:
    job = parse_job_message(body)
    fields = json.loads(body).popitem()[1]
    assert job.id == fields["id"]
    if "userId" in fields:
        assert job.user_id == fields["userId"]


def test_hostile_and_valid_messages_interleaved_drain_through_the_sensor(
    local_aws, tick, instance, monkeypatch
) -> None:
    sqs = local_aws.client("sqs")
    huge = [m for m in HOSTILE_MESSAGES if len(m.body.encode()) > 64 * 1024]
    # SQS refuses an empty body at send time, so that case cannot reach the queue; the parser test covers it.
    small = [m for m in HOSTILE_MESSAGES if m not in huge and m.body]
    valid_bodies = [body for _, body in VALID_MESSAGES]
    interleaved: list[HostileMessage | str] = []
    for index, hostile in enumerate(small):
        interleaved.append(hostile)
        if index % 10 == 0 and valid_bodies:
            interleaved.append(valid_bodies.pop())
    interleaved.extend(valid_bodies)
    message_ids = send(local_aws, *[item if isinstance(item, str) else item.body for item in interleaved])
    hostile_by_id = {
        message_id: item
        for message_id, item in zip(message_ids, interleaved, strict=True)
        if isinstance(item, HostileMessage)
    }
    for message in huge:  # a batch holds at most 256 KiB in all
        hostile_by_id[
            sqs.send_message(QueueUrl=local_aws.queue_url, MessageBody=message.body)["MessageId"]
        ] = message

    received: list[str] = []
    """Ids of the messages the sensor's client received during the current tick."""

    def watch_receives(client: Any) -> None:
        def note(parsed: dict[str, Any], **_: Any) -> None:
            received.extend(message["MessageId"] for message in parsed.get("Messages", []))

        client.meta.events.register("after-call.sqs.ReceiveMessage", note)

    wrap_clients(monkeypatch, SQSResource, watch_receives)

    defs = intake_definitions(local_aws)
    cursor = None
    requests = []
    received_in: dict[str, int] = {}
    for tick_number in range(MAX_TICKS):
        received.clear()
        result = tick(cursor)  # a tick that raises fails the test here
        cursor = result.cursor
        _create_runs(instance, defs, result)
        requests.extend(result.run_requests)
        # Two of a tick's concurrent receives can both get a message (moto does): the tick counts it once.
        received_this_tick = set(received)
        for message_id in received_this_tick:
            assert message_id not in received_in, f"received again in tick {tick_number}"
            received_in[message_id] = tick_number

        # This tick's bad messages, and only they, are on the dead-letter queue now, each with its reason.
        bad = {message_id for message_id in received_this_tick if message_id in hostile_by_id}
        dead = _drain_dead_letters(local_aws)
        assert dead.keys() == bad, (
            f"tick {tick_number}: dead-lettered {len(dead)} of the {len(bad)} it received"
        )
        (observation,) = result.asset_events
        assert observation.metadata["dead_lettered"].value == len(bad)
        assert observation.metadata["received"].value == len(received_this_tick)
        for message_id, (body, reason) in dead.items():
            hostile = hostile_by_id[message_id]
            assert body == hostile.body, hostile.label
            assert hostile.reason_matches(reason), (hostile.label, reason, hostile.reason)
        if counts(local_aws, local_aws.queue_url) == (0, 0):
            break
    assert counts(local_aws, local_aws.queue_url) == (0, 0), "the queue did not drain"
    assert received_in.keys() == set(message_ids) | hostile_by_id.keys(), "each message was received once"

    produced = {job_id for request in requests for job_id in request.tags["producer_job_ids"].split(",")}
    assert produced == {json.loads(body).popitem()[1]["id"] for _, body in VALID_MESSAGES}
    for request in requests:
        assert instance.get_runs_count(dg.RunsFilter(tags={"dagster/run_key": request.run_key})) == 1


def _drain_dead_letters(local_aws) -> dict[str, tuple[str, str]]:
    """Take every message off the dead-letter queue: source message id -> (body, reason)."""
    sqs = local_aws.client("sqs")
    dead: dict[str, tuple[str, str]] = {}
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
            attributes = message["MessageAttributes"]
            source = attributes["source_message_id"]["StringValue"]
            assert source not in dead, "dead-lettered twice"
            dead[source] = (message["Body"], attributes["reason"]["StringValue"])
            sqs.delete_message(
                QueueUrl=local_aws.dead_letter_queue_url, ReceiptHandle=message["ReceiptHandle"]
            )


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
