"""Putting messages on the moto queue and reading its counts."""

from __future__ import annotations

from typing import Any

from jobs_orchestration.defs.resources import SQSResource
from jobs_orchestration.devstack.aws import LocalAws
from jobs_orchestration.intake.dead_letters import REASON, SOURCE_MESSAGE_ID


def sqs_resource(aws: LocalAws) -> SQSResource:
    return SQSResource(
        queue_url=aws.queue_url,
        dead_letter_queue_url=aws.dead_letter_queue_url,
        endpoint_url=aws.endpoint_url,
        region_name=aws.region,
    )


def sqs_resource_at(endpoint: str) -> SQSResource:
    """An SQSResource whose job and dead-letter queues are at `endpoint` (one that never answers or
    refuses connections, say), with moto's account and test credentials."""
    return SQSResource(
        queue_url=f"{endpoint}/123456789012/jobs",
        dead_letter_queue_url=f"{endpoint}/123456789012/jobs-dead-letters",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def send(aws: LocalAws, *bodies: str) -> list[str]:
    """Put the bodies on the job queue; returns their message ids, in order."""
    sqs = aws.client("sqs")
    message_ids = []
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start : start + 10])]
        response = sqs.send_message_batch(QueueUrl=aws.queue_url, Entries=entries)
        assert not response.get("Failed")
        sent = {int(entry["Id"]): entry["MessageId"] for entry in response["Successful"]}
        message_ids += [sent[index] for index in range(len(entries))]
    return message_ids


def counts(aws: LocalAws, url: str) -> tuple[int, int]:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = aws.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return int(attributes[names[0]]), int(attributes[names[1]])


def dead_letters(aws: LocalAws, *, keep: bool = False) -> list[dict[str, Any]]:
    """Every message on the dead-letter queue, body and attributes; taken off it unless `keep`."""
    sqs = aws.client("sqs")
    letters = []
    handles = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=aws.dead_letter_queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            attributes = {
                name: value["StringValue"] for name, value in message.get("MessageAttributes", {}).items()
            }
            letters.append({"body": message["Body"], **attributes})
            handles.append(message["ReceiptHandle"])
    for handle in handles:
        if keep:
            sqs.change_message_visibility(
                QueueUrl=aws.dead_letter_queue_url, ReceiptHandle=handle, VisibilityTimeout=0
            )
        else:
            sqs.delete_message(QueueUrl=aws.dead_letter_queue_url, ReceiptHandle=handle)
    return letters


__all__ = ["REASON", "SOURCE_MESSAGE_ID", "counts", "dead_letters", "send", "sqs_resource"]
