"""Receiving on several threads against the moto server: the queue drains, a message two calls both got
is handed off once (or dead-lettered once), and an SQS that stops answering stops every thread."""

from __future__ import annotations

import json
import socket
import threading
import time

from jobs_orchestration.devstack.aws import LocalAws
from jobs_orchestration.intake.handoff import IntakeLimits, JobBatch, QueueIntake
from jobs_orchestration.intake.messages import parse_job_message
from jobs_orchestration_tests.support import job_messages as m
from jobs_orchestration_tests.support.queue import counts, dead_letters, send, sqs_resource_at

CONCURRENT_CALLS = 4


class CallsInFlight:
    """Wraps a real client's receive_message to count the calls made and the most under way at once."""

    def __init__(self, client, delay: float = 0.0) -> None:
        self.receive = client.receive_message
        self.delay = delay
        self.lock = threading.Lock()
        self.calls = 0
        self.in_flight = 0
        self.most_in_flight = 0
        client.receive_message = self

    def __call__(self, **kwargs):
        with self.lock:
            self.calls += 1
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            time.sleep(self.delay)  # an SQS some way off, so the calls overlap however fast moto answers
            return self.receive(**kwargs)
        finally:
            with self.lock:
                self.in_flight -= 1


def only_forgotten_handles(errors: list[str]) -> bool:
    """Receiving the same message at the same moment, moto can give out a receipt handle it then
    forgets (its receive is not thread-safe); deleting by that one fails, the message goes by another.
    Real SQS accepts an outdated handle."""
    return all("ReceiptHandleIsInvalid" in error for error in errors)


def handed_off_keys(requests: list[JobBatch]) -> list[str]:
    return sorted(member.idempotency_key for batch in requests for member in batch.members)


def queue_that_redelivers_at_once(aws: LocalAws) -> str:
    """A queue whose messages are visible again as soon as they are received (visibility timeout 0),
    without a redrive policy: every receive gets every message, so concurrent calls get the same ones."""
    return aws.client("sqs").create_queue(
        QueueName="jobs-redelivered", Attributes={"VisibilityTimeout": "0"}
    )["QueueUrl"]


def test_concurrent_receives_drain_the_queue_and_hand_off_each_message_once(local_aws) -> None:
    bodies = [m.changelog(i) for i in range(1, 301)]
    send(local_aws, *bodies)
    client = local_aws.client("sqs")
    calls = CallsInFlight(client, delay=0.05)
    limits = IntakeLimits(
        concurrent_calls=CONCURRENT_CALLS, wait_time_seconds=0, max_seconds=120, tick_seconds=240
    )
    intake = QueueIntake(client, local_aws.queue_url, local_aws.dead_letter_queue_url, limits)

    first = intake.tick(None, run_exists=lambda key: False, route=lambda batch: batch)

    assert calls.most_in_flight == CONCURRENT_CALLS
    assert first.errors == [] and first.dead_letters == []
    assert first.received == 300
    assert handed_off_keys(first.requests) == sorted(parse_job_message(b).idempotency_key for b in bodies)
    assert counts(local_aws, local_aws.queue_url) == (0, 300)

    acknowledged = intake.tick(first.cursor, run_exists=lambda key: True, route=lambda batch: batch)

    assert only_forgotten_handles(acknowledged.errors) and acknowledged.requests == []
    assert counts(local_aws, local_aws.queue_url) == (0, 0)


def test_a_message_received_by_several_calls_is_handed_off_once(local_aws) -> None:
    queue_url = queue_that_redelivers_at_once(local_aws)
    # Ten, so that every receive gets them all (moto returns the first ten visible).
    bodies = [m.delete_package(i, 7) for i in range(1, 11)]
    local_aws.client("sqs").send_message_batch(
        QueueUrl=queue_url, Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies)]
    )
    limits = IntakeLimits(
        concurrent_calls=CONCURRENT_CALLS, batch_size=200, wait_time_seconds=0, max_seconds=0.5
    )
    intake = QueueIntake(local_aws.client("sqs"), queue_url, local_aws.dead_letter_queue_url, limits)

    first = intake.tick(None, run_exists=lambda key: False, route=lambda batch: batch)

    assert first.received == 10 and first.duplicates > 0
    (batch,) = first.requests
    assert len({member.message_id for member in batch.members}) == len(batch.members) == 10
    assert all(len(member.receipt_handles) > 1 for member in batch.members)

    # Acknowledged by all its receipt handles, each message leaves the queue for good.
    acknowledged = intake.tick(first.cursor, run_exists=lambda key: True, route=lambda batch: batch)

    assert only_forgotten_handles(acknowledged.errors) and acknowledged.requests == []
    assert counts(local_aws, queue_url) == (0, 0)


def test_a_malformed_message_received_by_several_calls_is_dead_lettered_once(local_aws) -> None:
    queue_url = queue_that_redelivers_at_once(local_aws)
    sqs = local_aws.client("sqs")
    message_id = sqs.send_message(QueueUrl=queue_url, MessageBody="not json")["MessageId"]
    calls = CallsInFlight(sqs)
    limits = IntakeLimits(concurrent_calls=CONCURRENT_CALLS, wait_time_seconds=0, max_seconds=0.5)
    intake = QueueIntake(sqs, queue_url, local_aws.dead_letter_queue_url, limits)

    result = intake.tick(None, run_exists=lambda key: False, route=lambda batch: batch)

    assert calls.calls > 1 and result.received == 1 and result.duplicates > 0
    assert only_forgotten_handles(result.errors) and result.requests == []
    assert [letter.message_id for letter in result.dead_letters] == [message_id]
    (letter,) = dead_letters(local_aws)
    assert (letter["body"], letter["source_message_id"]) == ("not json", message_id)
    # Deleted by every handle it was received with: it does not come back.
    assert counts(local_aws, queue_url) == (0, 0)


def test_an_sqs_that_refuses_connections_stops_every_receiving_thread(local_aws) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        refusing = f"http://127.0.0.1:{probe.getsockname()[1]}"
    sqs = sqs_resource_at(refusing)
    client = sqs.get_intake_client()
    calls = CallsInFlight(client)
    limits = IntakeLimits(concurrent_calls=CONCURRENT_CALLS, wait_time_seconds=0)
    intake = QueueIntake(client, sqs.queue_url, sqs.dead_letter_queue_url, limits)

    result = intake.tick(None, run_exists=lambda key: False, route=lambda batch: batch)

    # Each thread made at most the call it had started when the first failure came back.
    assert 1 <= calls.calls <= CONCURRENT_CALLS
    assert result.unreachable and result.requests == [] and result.dead_letters == []
    assert result.errors and all(error.startswith("receive failed") for error in result.errors)
    assert result.queue_counts == {}
    json.loads(result.cursor)  # a cursor to carry on from


def test_a_message_the_parser_chokes_on_fails_the_tick_without_leaving_a_thread_waiting(local_aws) -> None:
    send(local_aws, *[m.changelog(i) for i in range(1, 31)])
    client = local_aws.client("sqs")
    receive = client.receive_message
    first_call = threading.Event()

    def receive_one_answer_without_message_ids(**kwargs):
        response = receive(**kwargs)
        if not first_call.is_set():
            first_call.set()
            for message in response.get("Messages", []):
                del message["MessageId"]
        return response

    client.receive_message = receive_one_answer_without_message_ids
    # Two calls of 10 fill the count bound, so the other threads wait for the calls under way.
    limits = IntakeLimits(concurrent_calls=CONCURRENT_CALLS, max_messages=20, wait_time_seconds=0)
    intake = QueueIntake(client, local_aws.queue_url, local_aws.dead_letter_queue_url, limits)
    outcome: list[BaseException] = []

    def tick() -> None:
        try:
            intake.tick(None, run_exists=lambda key: False, route=lambda batch: batch)
        except KeyError as error:
            outcome.append(error)

    ticking = threading.Thread(target=tick, daemon=True)
    ticking.start()
    ticking.join(timeout=60)

    assert not ticking.is_alive(), "a receiving thread was left waiting"
    assert [type(error) for error in outcome] == [KeyError]
