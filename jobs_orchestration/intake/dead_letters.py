"""Sending job messages to the dead-letter queue: the body unchanged (so `jobs-orchestration dlq
redrive` can replay it once the cause is fixed) and why, as message attributes.

Three places dead-letter: the intake (a message that cannot be parsed or routed), a run (one member of
its batch failed for a reason of its own), and the run-failure sensor (a run failed for good: the
messages it held). They all send through `send_dead_letters`, so every dead letter reads the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from jobs_orchestration.aws import sqs

MAX_ATTRIBUTE_CHARS = 2000
"""A reason is cut to this length: enough to act on, and it keeps a dead letter near its body's size."""

REASON = "reason"
SOURCE_MESSAGE_ID = "source_message_id"
RUN_ID = "run_id"
REDRIVE_OF = "redrive_of"
"""Set on a message put back on the job queue from the dead-letter queue: the dead letter's message id."""
DEAD_LETTERED_BY = "dead_lettered_by"
"""`intake` (parse or route), `run` (one member of a batch), or `run_failure` (the run failed for good)."""


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    """The id SQS gave the message on the job queue."""
    body: str
    reason: str
    dead_lettered_by: str = "intake"
    run_id: str | None = None
    receipt_handle: str | None = None
    """Its handle on the job queue while it is still there (the intake deletes it once sent)."""


@dataclass
class SendOutcome:
    sent: list[DeadLetter] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    unreachable: bool = False
    """SQS did not answer: the letters not sent were not tried after that."""

    @property
    def all_sent(self) -> bool:
        return not self.errors and not self.unreachable


def send_dead_letters(client: Any, dead_letter_queue_url: str, letters: Sequence[DeadLetter]) -> SendOutcome:
    """Send each letter once (a letter the queue refused for a transient reason is sent again); stop at
    the first call SQS does not answer. A letter too large for SQS is refused on its own, and the caller
    leaves it where it was (on the main queue, whose redrive policy moves it on)."""
    result = sqs.send_messages(client, dead_letter_queue_url, letters, message_entry)
    outcome = SendOutcome(sent=result.succeeded, unreachable=bool(result.unanswered))
    outcome.errors.extend(
        f"dead-letter send failed for {letter.message_id}: {failure}" for letter, failure in result.failed
    )
    if result.unanswered:
        outcome.errors.append(f"dead-letter send failed: {result.unanswered_error}")
    return outcome


def message_entry(letter: DeadLetter) -> dict[str, Any]:
    attributes = {
        REASON: letter.reason[:MAX_ATTRIBUTE_CHARS],
        SOURCE_MESSAGE_ID: letter.message_id,
        DEAD_LETTERED_BY: letter.dead_lettered_by,
    }
    if letter.run_id:
        attributes[RUN_ID] = letter.run_id
    return {
        # SQS refuses an empty body; the reason says it was empty.
        "MessageBody": letter.body or "(empty body)",
        "MessageAttributes": {
            name: {"DataType": "String", "StringValue": value} for name, value in attributes.items() if value
        },
    }
