"""SQS's batch calls: send, delete and change visibility, 10 entries a call (see `batching`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from jobs_orchestration.aws import batching

T = TypeVar("T")

RECEIVE_MAX_MESSAGES = batching.SQS_BATCH.entries
"""ReceiveMessage returns at most 10 messages a call."""


def send_messages(
    client: Any,
    queue_url: str,
    items: Iterable[T],
    entry_of: Callable[[T], batching.Entry],
    *,
    attempts: int = batching.DEFAULT_ATTEMPTS,
) -> batching.BatchOutcome[T]:
    """SendMessageBatch the items; `entry_of` gives each one's SendMessage arguments (`MessageBody`,
    `MessageAttributes`), without an `Id`."""
    send = batching.call_with_ids(client.send_message_batch, "Entries", QueueUrl=queue_url)
    return batching.call_in_batches(
        send,
        items,
        entry_of,
        batching.SQS_BATCH,
        size_of=batching.message_size("MessageBody"),
        attempts=attempts,
    )


def delete_messages(
    client: Any, queue_url: str, receipt_handles: Sequence[str], *, concurrent_calls: int = 1
) -> batching.BatchOutcome[str]:
    """DeleteMessageBatch the messages these receipt handles name, each handle once: a message received
    by two calls at the same moment can come back with the same handle twice, and a call naming one
    handle twice is refused whole (moto: BatchEntryIdsNotDistinct)."""
    delete = batching.call_with_ids(client.delete_message_batch, "Entries", QueueUrl=queue_url)
    return batching.call_in_batches(
        delete,
        list(dict.fromkeys(receipt_handles)),
        lambda handle: {"ReceiptHandle": handle},
        batching.SQS_BATCH,
        concurrent_calls=concurrent_calls,
    )


def change_visibility(
    client: Any, queue_url: str, receipt_handles: Sequence[str], visibility_seconds: int
) -> batching.BatchOutcome[str]:
    """ChangeMessageVisibilityBatch: the messages become visible again after `visibility_seconds` (0: at
    once)."""
    change = batching.call_with_ids(client.change_message_visibility_batch, "Entries", QueueUrl=queue_url)
    return batching.call_in_batches(
        change,
        receipt_handles,
        lambda handle: {"ReceiptHandle": handle, "VisibilityTimeout": visibility_seconds},
        batching.SQS_BATCH,
    )
