"""SNS PublishBatch, 10 messages and 256 KiB a call (see `batching`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from jobs_orchestration.aws import batching

T = TypeVar("T")


def publish_messages(
    client: Any,
    topic_arn: str,
    items: Iterable[T],
    entry_of: Callable[[T], batching.Entry],
    *,
    attempts: int = batching.DEFAULT_ATTEMPTS,
    retry_delay_seconds: float = batching.DEFAULT_RETRY_DELAY_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> batching.BatchOutcome[T]:
    """PublishBatch the items; `entry_of` gives each one's `Message` and `MessageAttributes`."""
    return batching.call_in_batches(
        batching.call_with_ids(client.publish_batch, "PublishBatchRequestEntries", TopicArn=topic_arn),
        items,
        entry_of,
        batching.SNS_PUBLISH_BATCH,
        size_of=batching.message_size("Message"),
        attempts=attempts,
        retry_delay_seconds=retry_delay_seconds,
        sleep=sleep,
    )
