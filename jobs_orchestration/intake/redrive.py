"""Reading the dead-letter queue without consuming it, and putting dead letters back on the job queue.

`jobs-orchestration dlq list` / `dlq redrive` and the `redrive_dead_letters_job` launched from the UI
go through these functions, so both choose and move messages the same way.

Reading a message hides it from other readers for `LISTING_VISIBILITY_SECONDS`; every message read and
not moved is made visible again at once, so a listing or a redrive leaves the queue as it found it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from jobs_orchestration.aws import sqs
from jobs_orchestration.aws.batching import BatchOutcome
from jobs_orchestration.connectivity import ServiceUnreachable
from jobs_orchestration.intake.dead_letters import REASON, REDRIVE_OF, SOURCE_MESSAGE_ID

LISTING_VISIBILITY_SECONDS = 30
"""Messages being listed or redriven are hidden this long, so one pass sees each once; released at
once when the pass is done with them."""


RECEIVE_WAIT_SECONDS = 1
"""Each receive long-polls this long, well within the clients' read timeouts. A long poll asks every SQS
server, so an empty answer means there are no more; naming it here keeps a queue's own receive wait
(up to 20 s) from outlasting the read timeout."""


def read_dead_letters(
    client: Any, url: str, limit: int, *, visibility_seconds: int = LISTING_VISIBILITY_SECONDS
) -> Iterator[dict[str, Any]]:
    """Receive up to `limit` messages with their attributes; the caller releases or deletes them."""
    seen = 0
    while seen < limit:
        messages = client.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(sqs.RECEIVE_MAX_MESSAGES, limit - seen),
            VisibilityTimeout=visibility_seconds,
            WaitTimeSeconds=RECEIVE_WAIT_SECONDS,
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return
        seen += len(messages)
        yield from messages


def attribute(message: dict[str, Any], name: str) -> str | None:
    return message.get("MessageAttributes", {}).get(name, {}).get("StringValue")


def release(client: Any, url: str, messages: list[dict[str, Any]]) -> None:
    """Make read messages visible again at once (one SQS did not release comes back by itself when its
    visibility timeout ends)."""
    _raise_if_unanswered(sqs.change_visibility(client, url, [m["ReceiptHandle"] for m in messages], 0))


def _raise_if_unanswered(outcome: BatchOutcome) -> None:
    if outcome.unanswered:
        raise ServiceUnreachable(f"SQS did not answer: {outcome.unanswered_error}")


@dataclass(frozen=True)
class RedriveChoice:
    """Which dead letters to put back: all of those looked at unless narrowed."""

    ids: frozenset[str] = frozenset()
    """Dead letters' own message ids or their source message ids (the id on the job queue)."""
    reason_contains: str = ""
    """Only dead letters whose reason contains this text (case ignored)."""
    max_messages: int | None = None
    """Move at most this many; the rest stay on the dead-letter queue."""
    look_at: int = 1000
    """Dead letters read to choose from."""

    def __post_init__(self) -> None:
        if self.look_at < 1:
            raise ValueError(f"look_at must be at least 1, got {self.look_at}")
        if self.max_messages is not None and self.max_messages < 1:
            raise ValueError(f"max_messages must be at least 1, got {self.max_messages}")

    def matches(self, message: dict[str, Any]) -> bool:
        if self.ids and not {message["MessageId"], attribute(message, SOURCE_MESSAGE_ID)} & self.ids:
            return False
        reason = attribute(message, REASON) or ""
        return self.reason_contains.casefold() in reason.casefold()


@dataclass
class RedriveOutcome:
    moved: list[dict[str, Any]] = field(default_factory=list)
    """The dead letters now back on the job queue (as read from the dead-letter queue)."""
    not_sent: list[str] = field(default_factory=list)
    """`<message id>: <why>` for each chosen dead letter the job queue refused; it stays a dead letter."""
    not_removed: list[str] = field(default_factory=list)
    """`<message id>: <why>` for each dead letter sent to the job queue that the dead-letter queue did not
    delete: it is on both, and comes back on the dead-letter queue after its visibility timeout (a second
    redrive of it is recognized by the intake as the same work)."""
    missing_ids: list[str] = field(default_factory=list)
    """Ids asked for that no dead letter looked at carries."""
    looked_at: int = 0

    @property
    def moved_ids(self) -> list[str]:
        return [message["MessageId"] for message in self.moved]


def redrive_dead_letters(
    client: Any, queue_url: str, dead_letter_queue_url: str, choice: RedriveChoice
) -> RedriveOutcome:
    """Send each chosen dead letter's body, unchanged, to the job queue and delete it from the
    dead-letter queue once the job queue took it; release everything else that was read."""
    outcome = RedriveOutcome()
    chosen: list[dict[str, Any]] = []
    others: list[dict[str, Any]] = []
    found: set[str | None] = set()
    for message in read_dead_letters(client, dead_letter_queue_url, choice.look_at):
        outcome.looked_at += 1
        matches = choice.matches(message)
        if matches:
            found.update({message["MessageId"], attribute(message, SOURCE_MESSAGE_ID)})
        wanted = matches and (choice.max_messages is None or len(chosen) < choice.max_messages)
        (chosen if wanted else others).append(message)
    release(client, dead_letter_queue_url, others)
    sent = sqs.send_messages(client, queue_url, chosen, _redrive_entry)
    removed = sqs.delete_messages(client, dead_letter_queue_url, [m["ReceiptHandle"] for m in sent.succeeded])
    outcome.moved.extend(sent.succeeded)
    outcome.not_sent.extend(f"{message['MessageId']}: {failure}" for message, failure in sent.failed)
    by_handle = {message["ReceiptHandle"]: message for message in sent.succeeded}
    outcome.not_removed.extend(
        f"{by_handle[handle]['MessageId']}: {failure}" for handle, failure in removed.failed
    )
    _raise_if_unanswered(sent)
    _raise_if_unanswered(removed)
    release(client, dead_letter_queue_url, [message for message, _failure in sent.failed])
    outcome.missing_ids = sorted(set(choice.ids) - found)
    return outcome


def _redrive_entry(message: dict[str, Any]) -> dict[str, Any]:
    """The dead letter's body unchanged, marked with the dead letter's id (see `REDRIVE_OF`)."""
    return {
        "MessageBody": message["Body"],
        "MessageAttributes": {REDRIVE_OF: {"DataType": "String", "StringValue": message["MessageId"]}},
    }
