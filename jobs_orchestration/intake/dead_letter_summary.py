"""What the dead-letter queue holds, read without consuming it: how many messages, how old the oldest,
and how many for each reason.

SQS gives the counts (ApproximateNumberOfMessages and ...NotVisible); the reasons and ages come from a
peek: a bounded receive whose messages are made visible again at once (and would come back by
themselves after `PEEK_VISIBILITY_SECONDS` if that failed), so a `dlq list` or a redrive running at the
same moment misses them for a moment at most.

Reasons carry ids, sizes and run ids, so no two read alike; they are grouped by their leading words with
numbers, UUIDs and quoted values blanked (`reason_group`), which keeps "package_id 41: refused: ..." and
"package_id 42: refused: ..." together.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jobs_orchestration.intake.dead_letters import DEAD_LETTERED_BY, REASON
from jobs_orchestration.intake.redrive import attribute, read_dead_letters, release

PEEK_LIMIT = 100
"""Messages read per look: enough to tell the reasons apart; the counts come from SQS, not the peek."""
PEEK_VISIBILITY_SECONDS = 10
REASON_WORDS = 8
CLAUSE_WORDS = 4
NO_REASON = "no reason attribute (moved by the job queue's redrive policy)"
NOT_MARKED = "redrive_policy"
"""What `dead_lettered_by` reads for a message SQS moved itself after too many receives."""

_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE)
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_NUMBER = re.compile(r"(?<![A-Za-z_])[-+]?\d[\d_.,]*")


def reason_group(reason: str | None) -> str:
    """The reason's leading words, with UUIDs and quoted values as `…` and numbers as `N`: up to the
    first colon that ends a clause of `CLAUSE_WORDS` words or more ("body is not JSON: <the parser's
    words>", "run … of delete_package_job failed for good: <the error>"), at most `REASON_WORDS`."""
    if not reason or not reason.strip():
        return NO_REASON
    text = _UUID.sub("…", reason)
    text = _QUOTED.sub("…", text)
    text = _NUMBER.sub("N", text)
    words: list[str] = []
    for word in text.split()[:REASON_WORDS]:
        words.append(word)
        if word.endswith(":") and len(words) >= CLAUSE_WORDS:
            break
    return " ".join(words).rstrip(" ,;:(")


@dataclass
class DeadLetterSummary:
    visible: int = 0
    in_flight: int = 0
    """Being read by someone right now (a listing, a redrive): still dead letters."""
    peeked: int = 0
    oldest_sent_at: float | None = None
    """Epoch seconds the oldest message read was sent to its queue (SQS keeps a redriven-by-policy
    message's original time)."""
    newest_sent_at: float | None = None
    by_reason: dict[str, int] = field(default_factory=dict)
    """Reason group -> messages read, most frequent first."""
    by_dead_lettered_by: dict[str, int] = field(default_factory=dict)
    sent_at: list[float] = field(default_factory=list)

    @property
    def depth(self) -> int:
        return self.visible + self.in_flight

    def oldest_age_seconds(self, now: float) -> float:
        return 0.0 if self.oldest_sent_at is None else max(0.0, now - self.oldest_sent_at)

    def sent_after(self, moment: float | None) -> int:
        """Messages read that reached the queue after `moment` (all of them when it is None)."""
        return len(self.sent_at) if moment is None else sum(1 for sent in self.sent_at if sent > moment)

    def reasons_text(self, limit: int = 5) -> str:
        lines = [f"{count} × {group}" for group, count in list(self.by_reason.items())[:limit]]
        if len(self.by_reason) > limit:
            lines.append(f"… and {len(self.by_reason) - limit} other reason(s)")
        if self.peeked < self.depth:
            lines.append(f"(reasons of the {self.peeked} read of {self.depth})")
        return "\n".join(lines)


def summarize_dead_letter_queue(
    client: Any, url: str, *, peek_limit: int = PEEK_LIMIT, now: Callable[[], float] = time.time
) -> DeadLetterSummary:
    """Count the queue and read up to `peek_limit` of its messages, leaving every one of them there."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    summary = DeadLetterSummary(
        visible=int(attributes.get(names[0], 0)), in_flight=int(attributes.get(names[1], 0))
    )
    if not summary.visible:
        return summary
    messages = list(
        read_dead_letters(
            client, url, min(peek_limit, summary.visible), visibility_seconds=PEEK_VISIBILITY_SECONDS
        )
    )
    try:
        reasons: Counter[str] = Counter()
        sources: Counter[str] = Counter()
        for message in messages:
            reasons[reason_group(attribute(message, REASON))] += 1
            sources[attribute(message, DEAD_LETTERED_BY) or NOT_MARKED] += 1
            sent = message.get("Attributes", {}).get("SentTimestamp")
            summary.sent_at.append(int(sent) / 1000 if sent else now())
    finally:
        release(client, url, messages)
    summary.peeked = len(messages)
    summary.by_reason = dict(reasons.most_common())
    summary.by_dead_lettered_by = dict(sources.most_common())
    if summary.sent_at:
        summary.oldest_sent_at = min(summary.sent_at)
        summary.newest_sent_at = max(summary.sent_at)
    # What was read is on the queue even if the count was taken a moment before it arrived.
    summary.visible = max(summary.visible, summary.peeked)
    return summary
