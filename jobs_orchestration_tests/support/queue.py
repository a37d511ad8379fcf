"""Putting messages on the moto queue and reading its counts."""

from __future__ import annotations

from jobs_orchestration.devstack.aws import LocalAws


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
