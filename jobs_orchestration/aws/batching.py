"""Batch calls within each AWS API's limits, retrying only the entries that failed.

AWS's batch APIs (SQS SendMessageBatch, DeleteMessageBatch and ChangeMessageVisibilityBatch, SNS
PublishBatch, S3 DeleteObjects) answer a call with a result per entry: the entries that failed come
back with an error code, and SQS and SNS also say whether the entry itself was at fault. Here:

- entries are grouped up to the API's count and byte limits (`BatchLimits`), in the order given;
- an entry that failed with a transient code is sent again, with the other such entries of its round,
  after a backoff; entries that succeeded are never sent twice, and a permanent failure is kept at once;
- a call that fails as a whole is not retried here: the client has already made its own attempts at it
  (see `jobs_orchestration.aws.clients`), and a second layer of retries would multiply them. Its
  entries fail with the call's error;
- a call the service never answered (a lost connection, a timeout) stops the work: that call's entries
  and every entry not yet sent come back as `unanswered`, for the caller to keep for later, instead of
  spending the client's retries on every remaining batch of an outage.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from jobs_orchestration.connectivity import is_unreachable
from jobs_orchestration.failures import Failure

T = TypeVar("T")

Entry = dict[str, Any]
"""One entry of a batch call, as the API takes it (without the `Id` SQS and SNS ask for: see `with_ids`)."""


@dataclass(frozen=True)
class BatchLimits:
    entries: int
    bytes: int | None = None
    """What the entries of one call may add up to, as `size_of` counts them; None: no byte limit."""


SQS_BATCH = BatchLimits(entries=10, bytes=262_144)
"""SQS's batch calls take 10 entries; SendMessageBatch at most 256 KiB of bodies and attributes (SQS now
accepts up to 1 MiB, but 256 KiB holds on every SQS and emulator; larger messages go alone)."""
SNS_PUBLISH_BATCH = BatchLimits(entries=10, bytes=262_144)
"""SNS PublishBatch: 10 entries and 256 KiB of messages and attributes a call."""
S3_DELETE_OBJECTS = BatchLimits(entries=1_000)
"""S3 DeleteObjects: 1,000 keys (or key versions) a call."""

DEFAULT_ATTEMPTS = 3
"""Rounds of a batch call per entry: the first and two retries of the entries that failed transiently."""
DEFAULT_RETRY_DELAY_SECONDS = 0.2


def message_bytes(body: str, attributes: Mapping[str, Mapping[str, str]]) -> int:
    """Bytes an SQS or SNS message counts against a batch's limit: its body and its attributes' names,
    types and values."""
    return len(body.encode()) + sum(
        len(name.encode()) + len(value["DataType"].encode()) + len(value["StringValue"].encode())
        for name, value in attributes.items()
    )


def batches(
    items: Iterable[T], limits: BatchLimits, size_of: Callable[[T], int] | None = None
) -> Iterator[list[T]]:
    """Consecutive groups of the items within the limits. An item larger than the byte limit on its own
    goes alone: the service refuses it, and that stays its own failure."""
    batch: list[T] = []
    batch_bytes = 0
    for item in items:
        item_bytes = size_of(item) if size_of is not None and limits.bytes is not None else 0
        if batch and (
            len(batch) == limits.entries
            or (limits.bytes is not None and batch_bytes + item_bytes > limits.bytes)
        ):
            yield batch
            batch, batch_bytes = [], 0
        batch.append(item)
        batch_bytes += item_bytes
    if batch:
        yield batch


def with_ids(entries: Sequence[Entry]) -> list[Entry]:
    """The entries of one call with the `Id` SQS and SNS ask for: their position in the call, which is
    how `entry_failures` finds them again."""
    return [{"Id": str(position), **entry} for position, entry in enumerate(entries)]


def entry_failures(response: Mapping[str, Any]) -> dict[int, Failure]:
    """Position -> failure of each entry an SQS or SNS batch call reports failed (entries sent
    `with_ids`)."""
    return {
        int(failed["Id"]): Failure.of_entry(
            str(failed.get("Code", "")),
            str(failed.get("Message", "")),
            sender_fault=bool(failed.get("SenderFault")),
        )
        for failed in response.get("Failed", [])
    }


def call_with_ids(
    method: Callable[..., Mapping[str, Any]], entries_parameter: str, **parameters: Any
) -> Callable[[list[Entry]], dict[int, Failure]]:
    """One SQS or SNS batch call as `call_in_batches` makes it: the entries sent `with_ids` under
    `entries_parameter`, the failed ones read back from the response."""
    return lambda entries: entry_failures(method(**parameters, **{entries_parameter: with_ids(entries)}))


def message_size(body_field: str) -> Callable[[Entry], int]:
    """`message_bytes` of an SQS or SNS entry whose body is under `body_field`."""
    return lambda entry: message_bytes(entry[body_field], entry.get("MessageAttributes", {}))


@dataclass
class BatchOutcome(Generic[T]):
    """What became of each item: done, failed (with why), or not done because the service stopped
    answering."""

    succeeded: list[T] = field(default_factory=list)
    failed: list[tuple[T, Failure]] = field(default_factory=list)
    unanswered: list[T] = field(default_factory=list)
    """Items of the call that got no answer and of every call not made after it."""
    unanswered_error: Failure | None = None
    """What the call that got no answer raised."""

    @property
    def all_succeeded(self) -> bool:
        return not self.failed and not self.unanswered


def on_threads(work: Callable[[], None], threads: int) -> None:
    """Run `work` on `threads` threads (each pulling calls to make from shared state) and wait for all;
    an error one of them raised is raised here."""
    if threads == 1:
        work()
        return
    with ThreadPoolExecutor(threads, thread_name_prefix="aws-calls") as pool:
        for future in [pool.submit(work) for _ in range(threads)]:
            future.result()


def call_in_batches(
    call: Callable[[list[Entry]], Mapping[int, Failure]],
    items: Iterable[T],
    entry_of: Callable[[T], Entry],
    limits: BatchLimits,
    *,
    size_of: Callable[[Entry], int] | None = None,
    attempts: int = DEFAULT_ATTEMPTS,
    retry_delay_seconds: float = DEFAULT_RETRY_DELAY_SECONDS,
    concurrent_calls: int = 1,
    sleep: Callable[[float], None] = time.sleep,
) -> BatchOutcome[T]:
    """Send the items' entries (`entry_of`) in batches within `limits`; `call` makes one API call and
    returns the failed entries by their position in it. Entries that failed transiently are sent again,
    up to `attempts` rounds in all, with exponential backoff and jitter between rounds. Calls run on
    `concurrent_calls` threads; items are read from `items` as batches are formed."""
    outcome: BatchOutcome[T] = BatchOutcome()
    pending: Iterable[T] = items
    for attempt in range(attempts):
        retry = _one_round(call, pending, entry_of, limits, size_of, concurrent_calls, outcome)
        if outcome.unanswered or not retry:
            break
        if attempt == attempts - 1:
            outcome.failed.extend(retry)
            break
        sleep(retry_delay_seconds * (2**attempt) * random.uniform(0.5, 1.5))
        pending = [item for item, _failure in retry]
    return outcome


def _one_round(
    call: Callable[[list[Entry]], Mapping[int, Failure]],
    items: Iterable[T],
    entry_of: Callable[[T], Entry],
    limits: BatchLimits,
    size_of: Callable[[Entry], int] | None,
    concurrent_calls: int,
    outcome: BatchOutcome[T],
) -> list[tuple[T, Failure]]:
    """Send every item once; record successes, permanent failures and unanswered items in `outcome`, and
    return the transient failures."""
    pairs = ((item, entry_of(item)) for item in items)
    groups = batches(pairs, limits, None if size_of is None else lambda pair: size_of(pair[1]))
    lock = threading.Lock()
    retry: list[tuple[T, Failure]] = []

    def send_batches() -> None:
        while True:
            with lock:
                batch = next(groups, None)
                if batch is None:
                    return
                if outcome.unanswered:  # the service stopped answering: the rest waits
                    outcome.unanswered.extend(item for item, _entry in batch)
                    continue
            try:
                failures = call([entry for _item, entry in batch])
            except Exception as error:
                with lock:
                    if is_unreachable(error):
                        outcome.unanswered.extend(item for item, _entry in batch)
                        outcome.unanswered_error = outcome.unanswered_error or Failure.of(error)
                    else:
                        call_failure = Failure.of(error)
                        outcome.failed.extend((item, call_failure) for item, _entry in batch)
                continue
            with lock:
                for position, (item, _entry) in enumerate(batch):
                    failure = failures.get(position)
                    if failure is None:
                        outcome.succeeded.append(item)
                    elif failure.transient:
                        retry.append((item, failure))
                    else:
                        outcome.failed.append((item, failure))

    on_threads(send_batches, concurrent_calls)
    if outcome.unanswered:
        # Entries waiting for another round are not done either; they go with the unanswered ones.
        outcome.unanswered.extend(item for item, _failure in retry)
        return []
    return retry
