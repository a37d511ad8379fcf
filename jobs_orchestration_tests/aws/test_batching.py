"""The AWS layer's batch calls: grouped within each API's limits, only the failed entries sent again,
an unanswered call stopping the rest. Against the real moto server; calls are counted with botocore's
event hooks, and faults are injected by wrapping the real client's call."""

from __future__ import annotations

import json
import socket
import uuid

import pytest

from jobs_orchestration.aws import s3, sns, sqs
from jobs_orchestration.aws.batching import (
    SQS_BATCH,
    BatchLimits,
    batches,
    call_in_batches,
    message_bytes,
)
from jobs_orchestration.aws.clients import aws_client, aws_client_config
from jobs_orchestration.connectivity import ServiceUnreachable
from jobs_orchestration.failures import Failure


def _count_calls(client, operation: str) -> list[int]:
    """Entries per call of `operation`, recorded as the requests go out."""
    sizes: list[int] = []

    def record(params, **_kwargs):
        entries = (
            params.get("Entries") or params.get("PublishBatchRequestEntries") or params["Delete"]["Objects"]
        )
        sizes.append(len(entries))

    client.meta.events.register(f"provide-client-params.*.{operation}", record)
    return sizes


def test_batches_keep_to_the_count_and_byte_limits_and_an_oversized_item_goes_alone():
    limits = BatchLimits(entries=3, bytes=10)
    sizes = [2, 2, 2, 2, 7, 20, 1]
    groups = list(batches(sizes, limits, size_of=lambda size: size))
    assert groups == [[2, 2, 2], [2, 7], [20], [1]]
    assert list(batches(range(7), BatchLimits(entries=3))) == [[0, 1, 2], [3, 4, 5], [6]]


def test_only_entries_that_failed_transiently_are_sent_again():
    calls: list[list[str]] = []
    throttled_once: set[str] = set()

    def call(entries):
        calls.append([entry["name"] for entry in entries])
        failures = {}
        for position, entry in enumerate(entries):
            if entry["name"] == "denied":
                failures[position] = Failure.of_entry("AccessDenied", "no")
            elif entry["name"] == "refused":
                failures[position] = Failure.of_entry("InternalError", "bad entry", sender_fault=True)
            elif entry["name"].startswith("slow") and entry["name"] not in throttled_once:
                throttled_once.add(entry["name"])
                failures[position] = Failure.of_entry("Throttling", "slow down")
        return failures

    names = ["a", "slow-1", "denied", "b", "slow-2", "refused", "c"]
    outcome = call_in_batches(
        call, names, lambda name: {"name": name}, BatchLimits(entries=4), retry_delay_seconds=0
    )

    assert calls == [["a", "slow-1", "denied", "b"], ["slow-2", "refused", "c"], ["slow-1", "slow-2"]]
    assert sorted(outcome.succeeded) == ["a", "b", "c", "slow-1", "slow-2"]
    assert {name: failure.kind for name, failure in outcome.failed} == {
        "denied": "AccessDenied",
        "refused": "InternalError",
    }
    assert not outcome.unanswered


def test_sqs_sends_in_calls_of_ten_and_at_most_256_kib(local_aws):
    client = local_aws.client("sqs")
    calls = _count_calls(client, "SendMessageBatch")
    bodies = [f"small-{index}" for index in range(23)] + ["x" * 100_000] * 3

    outcome = sqs.send_messages(
        client, local_aws.queue_url, bodies, lambda body: {"MessageBody": body, "MessageAttributes": {}}
    )

    assert outcome.all_succeeded and len(outcome.succeeded) == 26
    # 23 small bodies: 10, 10, then 3 with two 100 kB bodies; a third would pass 256 KiB.
    assert calls == [10, 10, 5, 1]
    assert all(
        sum(message_bytes(body, {}) for body in group) <= (SQS_BATCH.bytes or 0)
        for group in batches(bodies, SQS_BATCH, size_of=lambda body: message_bytes(body, {}))
    )


def test_an_entry_sqs_refuses_fails_alone_and_the_others_are_sent(local_aws):
    client = local_aws.client("sqs")
    too_large = "y" * 1_100_000  # over SQS's 1 MiB limit for one message

    outcome = sqs.send_messages(
        client,
        local_aws.queue_url,
        ["fine", too_large, "also fine"],
        lambda body: {"MessageBody": body, "MessageAttributes": {}},
    )

    assert sorted(outcome.succeeded) == ["also fine", "fine"]
    [(body, failure)] = outcome.failed
    assert body == too_large and not failure.transient


def test_deleting_messages_reports_each_handle(local_aws):
    client = local_aws.client("sqs")
    for index in range(12):
        client.send_message(QueueUrl=local_aws.queue_url, MessageBody=f"m{index}")
    handles: list[str] = []
    while len(handles) < 12:
        messages = client.receive_message(QueueUrl=local_aws.queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        handles.extend(message["ReceiptHandle"] for message in messages)
    calls = _count_calls(client, "DeleteMessageBatch")

    outcome = sqs.delete_messages(client, local_aws.queue_url, handles, concurrent_calls=2)

    assert sorted(outcome.succeeded) == sorted(handles) and not outcome.failed
    assert sorted(calls) == [2, 10]
    attributes = client.get_queue_attributes(
        QueueUrl=local_aws.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert attributes == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}


def test_a_receipt_handle_named_twice_is_deleted_once(local_aws):
    # Two receives at the same moment can hand out one handle twice; a call naming it twice is refused.
    client = local_aws.client("sqs")
    client.send_message(QueueUrl=local_aws.queue_url, MessageBody="twice")
    (message,) = client.receive_message(QueueUrl=local_aws.queue_url)["Messages"]
    calls = _count_calls(client, "DeleteMessageBatch")

    outcome = sqs.delete_messages(client, local_aws.queue_url, [message["ReceiptHandle"]] * 2)

    assert outcome.succeeded == [message["ReceiptHandle"]] and not outcome.failed
    assert calls == [1]


def test_a_silent_service_stops_the_calls_and_leaves_every_entry_unanswered():
    with socket.socket() as listener:  # accepts connections and never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        endpoint = f"http://127.0.0.1:{listener.getsockname()[1]}"
        client = aws_client(
            "sqs",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
            config=aws_client_config(2, connect_timeout=1, read_timeout=0.5),
        )
        calls = _count_calls(client, "DeleteMessageBatch")

        outcome = sqs.delete_messages(client, f"{endpoint}/123/q", [f"h{index}" for index in range(35)])

    assert calls == [10]  # the first call only (the client made its own second attempt at it)
    assert len(outcome.unanswered) == 35 and not outcome.succeeded and not outcome.failed
    assert outcome.unanswered_error is not None and outcome.unanswered_error.transient


def test_sns_publishes_ten_a_call_and_retries_only_throttled_entries(local_aws):
    client = local_aws.client("sns")
    real_publish_batch = client.publish_batch
    calls: list[int] = []

    def first_call_throttles_two(**request):
        entries = request["PublishBatchRequestEntries"]
        calls.append(len(entries))
        if len(calls) > 1:
            return real_publish_batch(**request)
        response = real_publish_batch(**{**request, "PublishBatchRequestEntries": entries[2:]})
        response["Failed"] = [
            {"Id": entry["Id"], "Code": "Throttled", "Message": "slow down", "SenderFault": False}
            for entry in entries[:2]
        ]
        return response

    client.publish_batch = first_call_throttles_two
    messages = [json.dumps({"n": index}) for index in range(13)]

    outcome = sns.publish_messages(
        client, local_aws.topic_arn, messages, lambda body: {"Message": body}, retry_delay_seconds=0
    )

    assert calls == [10, 3, 2]
    assert sorted(outcome.succeeded) == sorted(messages) and not outcome.failed


def test_s3_deletes_1000_keys_a_call_and_every_version_where_the_bucket_keeps_them(local_aws):
    client = local_aws.client("s3")
    bucket = f"versions-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for key in ("a", "b", "kept"):
        client.put_object(Bucket=bucket, Key=key, Body=b"1")
        client.put_object(Bucket=bucket, Key=key, Body=b"2")
    calls = _count_calls(client, "DeleteObjects")
    try:
        outcome = s3.delete_keys(client, bucket, ["a", "b", "missing"], all_versions=True)

        assert sorted(outcome.deleted) == ["a", "b", "missing"] and not outcome.errors
        assert calls == [4]
        left = client.list_object_versions(Bucket=bucket)
        assert {entry["Key"] for entry in left.get("Versions", [])} == {"kept"}
    finally:
        s3.delete_keys(client, bucket, ["kept"], all_versions=True)
        client.delete_bucket(Bucket=bucket)


def test_s3_keys_that_keep_failing_are_reported_with_their_code_and_a_silent_s3_raises(local_aws):
    client = local_aws.client("s3")
    bucket = f"plain-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    keys = [f"k{index}" for index in range(1_500)]
    real_delete_objects = client.delete_objects

    def denied_for_k7(**request):
        response = real_delete_objects(**request)
        if any(entry["Key"] == "k7" for entry in request["Delete"]["Objects"]):
            response["Errors"] = [{"Key": "k7", "Code": "AccessDenied", "Message": "no"}]
        return response

    client.delete_objects = denied_for_k7
    calls = _count_calls(client, "DeleteObjects")
    try:
        outcome = s3.delete_keys(client, bucket, keys)
        assert calls == [1000, 500]  # a permanent failure is not sent again
        assert len(outcome.deleted) == 1_499
        assert {key: str(failure) for key, failure in outcome.errors.items()} == {"k7": "AccessDenied: no"}
    finally:
        client.delete_bucket(Bucket=bucket)

    silent = aws_client(
        "s3",
        endpoint_url="http://127.0.0.1:9",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=aws_client_config(1, connect_timeout=1, read_timeout=1),
    )
    with pytest.raises(ServiceUnreachable, match="S3"):
        s3.delete_keys(silent, bucket, keys)
