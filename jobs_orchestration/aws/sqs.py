"""SQS's batch calls: send, delete and change visibility, 10 entries a call (see `batching`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from jobs_orchestration.aws.batching import (
    DEFAULT_ATTEMPTS,
    SQS_BATCH,
    BatchOutcome,
    Entry,
    call_in_batches,
    entry_failures,
    message_bytes,
    with_ids,
)

T = TypeVar("T")

RECEIVE_MAX_MESSAGES = SQS_BATCH.entries
"""ReceiveMessage returns at most 10 messages a call."""


def send_messages(
    client: Any,
    queue_url: str,
    items: Iterable[T],
    entry_of: Callable[[T], Entry],
    *,
    attempts: int = DEFAULT_ATTEMPTS,
    concurrent_calls: int = 1,
) -> BatchOutcome[T]:
    """SendMessageBatch the items; `entry_of` gives each one's SendMessage arguments (`MessageBody`,
    `MessageAttributes`), without an `Id`."""
    return call_in_batches(
        lambda entries: entry_failures(
            client.send_message_batch(QueueUrl=queue_url, Entries=with_ids(entries))
        ),
        items,
        entry_of,
        SQS_BATCH,
        size_of=lambda entry: message_bytes(entry["MessageBody"], entry.get("MessageAttributes", {})),
        attempts=attempts,
        concurrent_calls=concurrent_calls,
    )


def delete_messages(
    client: Any, queue_url: str, receipt_handles: Sequence[str], *, concurrent_calls: int = 1
) -> BatchOutcome[str]:
    """DeleteMessageBatch the messages these receipt handles name."""
    return call_in_batches(
        lambda entries: entry_failures(
            client.delete_message_batch(QueueUrl=queue_url, Entries=with_ids(entries))
        ),
        receipt_handles,
        lambda handle: {"ReceiptHandle": handle},
        SQS_BATCH,
        concurrent_calls=concurrent_calls,
    )


def change_visibility(
    client: Any, queue_url: str, receipt_handles: Sequence[str], visibility_seconds: int
) -> BatchOutcome[str]:
    """ChangeMessageVisibilityBatch: the messages become visible again after `visibility_seconds` (0: at
    once)."""
    return call_in_batches(
        lambda entries: entry_failures(
            client.change_message_visibility_batch(QueueUrl=queue_url, Entries=with_ids(entries))
        ),
        receipt_handles,
        lambda handle: {"ReceiptHandle": handle, "VisibilityTimeout": visibility_seconds},
        SQS_BATCH,
    )
