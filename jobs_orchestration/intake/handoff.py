"""Hand job messages from SQS to an orchestrator without losing or duplicating work.

One tick does, in order:

1. **Acknowledge.** The cursor holds the receipt handles of messages handed off on earlier ticks, keyed
   by the run key asked for. Those whose run now exists are deleted from the queue; the others stay
   pending until their receipt handles expire (the visibility timeout), after which the messages come
   back by themselves. When SQS does not answer, the handles not deleted stay pending too, and the
   tick ends there (it receives nothing it could not acknowledge later): the next tick after SQS is
   back deletes them, and until then a message only ever leaves the queue once its run exists.
2. **Receive**, several calls under way at once, bounded by message count and by wall time, well
   inside the 60 s a sensor tick may take. Two calls can both get one message (moto does, SQS may):
   it counts once and keeps both receipt handles, so deleting it deletes it whichever one SQS honours.
3. **Parse.** A message that cannot be parsed (or whose batch cannot be routed) is sent to the
   dead-letter queue with its reason and original body, once however often it was received, and
   deleted from the main queue, in this tick.
4. **Deduplicate.** A message whose idempotency key was already handed off (a redelivery after a lost
   delete, or a producer re-send) asks for nothing: it joins the pending entry, or is deleted at once
   when its run already exists.
5. **Batch.** Messages are grouped by job type, and within it by the type's rule (organization for
   deletions, see `JobType`), up to `batch_size`;
   a batch's run key is a digest of its members' sorted idempotency keys.

Partial redelivery: if a tick's requests were never turned into runs (for example the daemon died
before reserving them), the cursor was not saved either, the messages come back after the visibility
timeout, possibly grouped differently, and get new batch run keys: nothing ran, so nothing runs twice.
If the runs exist, the cursor that names their members was saved with them (Dagster stores the cursor
together with the reserved runs), so members that come back are recognized by key through
`handed_off` and deleted. The remaining window is a cursor that forgot a key (the `handed_off` memory
is bounded); the jobs are idempotent, and the changelog job deduplicates by producer job id.

Nothing here imports Dagster: the caller passes `run_exists(run_key)` and `route(batch)`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from jobs_orchestration.aws import sqs
from jobs_orchestration.aws.batching import on_threads
from jobs_orchestration.connectivity import is_unreachable
from jobs_orchestration.intake.dead_letters import REDRIVE_OF, DeadLetter, send_dead_letters
from jobs_orchestration.intake.messages import (
    JOB_TYPES,
    JobMessage,
    MessageRejected,
    parse_job_message,
)

log = logging.getLogger(__name__)

CURSOR_VERSION = 1

RequestT = TypeVar("RequestT")


@dataclass(frozen=True)
class IntakeLimits:
    batch_size: int = 200
    """Messages of one kind per run (changelog events aside); 1 gives one run per message. A run costs
    seconds of start-up whatever it holds, so throughput grows with the batch; a deletion's work grows
    with it too (about 0.5 s a package), so its run, and the wait of its last package, lengthen."""
    changelog_batch_size: int = 1000
    """Changelog messages per run. Recording and publishing take milliseconds a message, so a run's
    start-up is most of its cost. A tick at 120 messages a second holds 500 to 750 of them: runs of
    500 split it into a full run and a remainder that pays a whole start, runs of 1,000 take it in one
    (10,000 offered at 120 a second on LocalStack, two runs of each, 2 cores: at 1,000, 17 runs,
    126-128 a second published, p95 from send to publication 10.1-10.7 s, Dagster's CPU 98 core-seconds;
    at 500, 29 runs, 110-114 a second, p95 18.1-19.2 s and growing, 136-143 core-seconds)."""
    max_messages: int = 2000
    """Messages received per tick at most: when a tick outlasts the daemon's 5 s loop, ticks come every
    10 s, and this leaves room to catch up above 100 messages a second. They stay in flight until the
    next tick acknowledges them, their receipt handles in the cursor meanwhile (about 200 bytes each)."""
    concurrent_calls: int = 4
    """Receive calls, and delete calls, under way at once. Each call waits on SQS tens of milliseconds,
    so one at a time a tick takes seconds to receive or acknowledge a thousand messages. (LocalStack
    answers faster than that: 2,000 messages received in 0.48 s on one thread, 0.37 s on four.)"""
    max_seconds: float = 2.0
    """Wall time spent receiving per tick at most. While producers keep sending, no receive comes back
    empty and a tick receives this long, whatever the backlog. What a message waits for its run is set
    by how often ticks come: the daemon starts ticks on a 5 s loop and skips a sensor whose tick is
    still under way, so a tick that ends within 5 s can come every 5 s (with a sensor interval under
    5 s), one that does not every 10 s. Six seconds of receiving made 7.2 s ticks (LocalStack, 100
    messages a second). One second was too short under load: the machine busy with the runs, a tick
    took fewer than had arrived since the last, and the backlog grew (10,000 messages on a quiet
    machine: p95 send to published 13.2 s, 250 to 750 messages left for the last ticks). Two seconds
    make 3 s ticks that drain it (p95 9.9 s, the last ticks nearly empty)."""
    tick_seconds: float = 30.0
    """Wall time of a whole tick's queue work at most, calls that SQS never answers included (each is
    cut by the intake client's read timeout, see `jobs_orchestration.aws.clients`): well inside the
    60 s Dagster gives a sensor tick, with room to create the runs."""
    wait_time_seconds: int = 1
    """Long-poll wait of a receive that finds the queue empty: the tick ends after one such wait, not
    at the first empty answer, so a producer that is still sending keeps the tick busy."""
    pending_seconds: float = 600.0
    """Forget a pending hand-off whose run never appeared after this long; its receipt handles have
    expired by then (the queue's visibility timeout is shorter) and the message has come back."""
    run_body_bytes: int = 1_048_576
    """Bytes of message bodies one run carries at most (its config holds every body). Real messages
    take a few hundred bytes, so only a batch of unusually large changelog details is cut by this."""
    remembered_keys: int = 2000
    """Idempotency keys of acknowledged messages kept in the cursor to recognize late redeliveries
    (about 27 bytes each: the cursor is stored on every tick)."""

    def __post_init__(self) -> None:
        for name in (
            "batch_size",
            "changelog_batch_size",
            "concurrent_calls",
            "max_messages",
            "max_seconds",
            "tick_seconds",
            "run_body_bytes",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")


@dataclass
class ReceivedJob:
    job: JobMessage
    message_id: str
    receipt_handles: list[str]
    body: str
    redrive_of: str = ""
    """The dead letter this message was redriven from (its `REDRIVE_OF` attribute), if it was."""

    @property
    def idempotency_key(self) -> str:
        """The job's key, and for a redriven message the dead letter it came from: the run that held
        the message before ended without doing it, so the redrive is new work, not a redelivery. The
        same dead letter redriven twice is still one piece of work."""
        key = self.job.idempotency_key
        return f"{key}:redrive_of={self.redrive_of}" if self.redrive_of else key

    @property
    def short_key(self) -> str:
        return hashlib.sha256(self.idempotency_key.encode()).hexdigest()[:24]


@dataclass
class JobBatch:
    """Messages that become one run."""

    type_name: str
    members: list[ReceivedJob]

    @property
    def jobs(self) -> list[JobMessage]:
        return [member.job for member in self.members]

    @property
    def member_keys(self) -> list[str]:
        return sorted(member.short_key for member in self.members)

    @property
    def run_key(self) -> str:
        digest = hashlib.sha256("\n".join(sorted(m.idempotency_key for m in self.members)).encode())
        return f"{self.type_name}:{digest.hexdigest()[:32]}"


@dataclass
class TickResult(Generic[RequestT]):
    requests: list[RequestT]
    cursor: str
    acknowledged: int = 0
    received: int = 0
    """Messages received, each once however many calls got it."""
    duplicates: int = 0
    """Messages that asked for nothing new: handed off before, a re-send of one received in this tick,
    or the same message got by a second receive call."""
    dead_letters: list[DeadLetter] = field(default_factory=list)
    queue_counts: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    """Wall time of the tick's queue work (acknowledge, receive, dead-letter, counts)."""
    unreachable: bool = False
    """SQS stopped answering during the tick: the calls after that were not made."""


@dataclass
class _DeleteOutcome:
    deleted: int = 0
    failures: list[str] = field(default_factory=list)
    unanswered: set[str] = field(default_factory=set)
    """Receipt handles of calls SQS never answered (unreachable): still valid, to be tried again."""


@dataclass
class _Cursor:
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)
    """run key -> {"receipts": [...], "members": [short keys], "since": epoch seconds}"""
    handed_off: dict[str, None] = field(default_factory=dict)
    """Short idempotency keys of messages whose run exists, oldest first (a dict as an ordered set)."""

    @classmethod
    def load(cls, text: str | None) -> _Cursor:
        if not text:
            return cls()
        try:
            data = json.loads(text)
            if data.get("version") == CURSOR_VERSION:
                return cls(pending=dict(data["pending"]), handed_off=dict.fromkeys(data["handed_off"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            pass
        log.warning("unreadable intake cursor ignored; unacknowledged messages will come back")
        return cls()

    def dump(self) -> str:
        return json.dumps(
            {"version": CURSOR_VERSION, "pending": self.pending, "handed_off": list(self.handed_off)},
            separators=(",", ":"),
        )

    def pending_run_for(self, short_key: str) -> str | None:
        for run_key, entry in self.pending.items():
            if short_key in entry["members"]:
                return run_key
        return None


class QueueIntake:
    """One queue and its dead-letter queue, driven tick by tick."""

    def __init__(
        self, client: Any, queue_url: str, dead_letter_queue_url: str, limits: IntakeLimits | None = None
    ) -> None:
        self.client = client
        self.queue_url = queue_url
        self.dead_letter_queue_url = dead_letter_queue_url
        self.limits = limits or IntakeLimits()

    def tick(
        self,
        cursor: str | None,
        run_exists: Callable[[str], bool],
        route: Callable[[JobBatch], RequestT],
        now: Callable[[], float] = time.time,
    ) -> TickResult[RequestT]:
        started = time.monotonic()
        deadline = started + self.limits.tick_seconds
        state = _Cursor.load(cursor)
        result: TickResult[RequestT] = TickResult(requests=[], cursor="")
        result.acknowledged, result.unreachable = self._acknowledge(state, run_exists, now(), result)
        if result.unreachable:
            result.cursor = state.dump()
            result.seconds = time.monotonic() - started
            return result

        received, rejected = self._receive(result, deadline)
        fresh = self._deduplicate(state, received, run_exists, result)
        for batch in self.batches(fresh):
            try:
                request = route(batch)
            except Exception as error:  # a batch that cannot be routed must not stop the others
                reason = f"cannot route {batch.type_name}: {type(error).__name__}: {error}"
                rejected.extend(
                    DeadLetter(member.message_id, member.body, reason, receipt_handle=handle)
                    for member in batch.members
                    for handle in member.receipt_handles
                )
                continue
            result.requests.append(request)
            state.pending[batch.run_key] = {
                "receipts": [h for member in batch.members for h in member.receipt_handles],
                "members": batch.member_keys,
                "since": now(),
            }
        # What was received is handed off whatever happens next; a message rejected while SQS went
        # silent comes back after its visibility timeout and is dead-lettered then.
        if not result.unreachable:
            self._dead_letter(rejected, result)
        if not result.unreachable and time.monotonic() < deadline:
            result.queue_counts = self.queue_counts(result)
        result.cursor = state.dump()
        result.seconds = time.monotonic() - started
        return result

    # -- phase 2 of the previous ticks' hand-offs ------------------------------------------------

    def _acknowledge(
        self, state: _Cursor, run_exists: Callable[[str], bool], at: float, result: TickResult
    ) -> tuple[int, bool]:
        """Delete the messages whose run exists; returns how many went and whether SQS was unreachable."""
        owned: dict[str, dict[str, Any]] = {}
        for run_key, entry in list(state.pending.items()):
            if run_exists(run_key):
                owned[run_key] = entry
                for key in entry["members"]:
                    state.handed_off[key] = None
            elif at - entry["since"] > self.limits.pending_seconds:
                del state.pending[run_key]
        excess = len(state.handed_off) - self.limits.remembered_keys
        for key in list(state.handed_off)[: max(excess, 0)]:
            del state.handed_off[key]
        outcome = self._delete([handle for entry in owned.values() for handle in entry["receipts"]])
        result.errors.extend(outcome.failures)
        for run_key, entry in owned.items():
            # A handle SQS answered for is done with, even when it failed (expired, say): the message
            # comes back and is recognized through handed_off. A handle whose call never got an answer
            # is tried again on the next tick, while it can still be valid.
            unanswered = [handle for handle in entry["receipts"] if handle in outcome.unanswered]
            if unanswered and at - entry["since"] <= self.limits.pending_seconds:
                entry["receipts"] = unanswered
            else:
                del state.pending[run_key]
        return outcome.deleted, bool(outcome.unanswered)

    # -- receive, parse, deduplicate ---------------------------------------------------------------

    def _receive(
        self, result: TickResult, tick_deadline: float
    ) -> tuple[list[ReceivedJob], list[DeadLetter]]:
        """Receive on `limits.concurrent_calls` threads, each making one call of up to 10 messages at a
        time, until the count or time bound, the first empty answer (after its long-poll wait) or the
        first failure. After an empty answer or a failure no thread starts another call; the calls
        already under way end or time out side by side, so an SQS that stops answering costs the tick
        one call's timeout.

        Two calls under way at once can both get a message (moto does, and SQS may): a message received
        again (the same MessageId) counts once, as a duplicate, and keeps every receipt handle it came
        with, so that acknowledging or dead-lettering it deletes it whichever handle SQS honours. A job
        message keeps them on its one `ReceivedJob`; a rejected one comes back as one `DeadLetter` per
        handle, which `_dead_letter` sends once."""
        received: dict[str, ReceivedJob] = {}
        rejected: list[DeadLetter] = []
        rejected_ids: set[str] = set()
        deadline = min(time.monotonic() + self.limits.max_seconds, tick_deadline)
        changed = threading.Condition()
        asked = 0
        """Messages asked for by calls still under way: with those received, never over the bound."""
        stop = False

        def keep(item: ReceivedJob | DeadLetter) -> None:
            if isinstance(item, DeadLetter):
                seen_before = item.message_id in rejected_ids
                rejected_ids.add(item.message_id)
                rejected.append(item)
            elif (known := received.get(item.message_id)) is not None:
                seen_before = True
                known.receipt_handles.extend(item.receipt_handles)
            else:
                seen_before = False
                received[item.message_id] = item
            if seen_before:
                result.duplicates += 1
            else:
                result.received += 1

        def receive_until_done() -> None:
            nonlocal asked, stop
            while True:
                with changed:
                    while not stop and result.received + asked >= self.limits.max_messages and asked:
                        changed.wait()  # a call under way may bring fewer than it asked for
                    wanted = min(sqs.RECEIVE_MAX_MESSAGES, self.limits.max_messages - result.received - asked)
                    if stop or wanted <= 0 or time.monotonic() >= deadline:
                        return
                    asked += wanted
                try:
                    messages = self.client.receive_message(
                        QueueUrl=self.queue_url,
                        MaxNumberOfMessages=wanted,
                        WaitTimeSeconds=self.limits.wait_time_seconds,
                        AttributeNames=["ApproximateReceiveCount"],
                        MessageAttributeNames=[REDRIVE_OF],
                    ).get("Messages", [])
                except Exception as error:
                    with changed:
                        asked -= wanted
                        result.errors.append(f"receive failed: {error}")
                        result.unreachable = result.unreachable or is_unreachable(error)
                        stop = True
                        changed.notify_all()
                    return
                try:
                    parsed = [self._parse(message) for message in messages]
                except BaseException:
                    # A message the parser cannot even reject fails the tick, as it did one call at a
                    # time; the other threads must not wait for this call's count meanwhile.
                    with changed:
                        asked -= wanted
                        stop = True
                        changed.notify_all()
                    raise
                with changed:
                    asked -= wanted
                    for item in parsed:
                        keep(item)
                    stop = stop or not messages
                    changed.notify_all()

        on_threads(receive_until_done, self.limits.concurrent_calls)
        return list(received.values()), rejected

    @staticmethod
    def _parse(message: dict[str, Any]) -> ReceivedJob | DeadLetter:
        body = message.get("Body", "")
        try:
            job = parse_job_message(body)
        except MessageRejected as rejection:
            return DeadLetter(
                message["MessageId"], body, rejection.reason, receipt_handle=message["ReceiptHandle"]
            )
        redrive_of = message.get("MessageAttributes", {}).get(REDRIVE_OF, {}).get("StringValue", "")
        return ReceivedJob(job, message["MessageId"], [message["ReceiptHandle"]], body, redrive_of)

    def _deduplicate(
        self,
        state: _Cursor,
        received: list[ReceivedJob],
        run_exists: Callable[[str], bool],
        result: TickResult,
    ) -> list[ReceivedJob]:
        fresh: dict[str, ReceivedJob] = {}
        already_owned: list[str] = []
        for item in received:
            key = item.short_key
            if key in fresh:  # the same job twice in one tick (a re-send)
                fresh[key].receipt_handles.extend(item.receipt_handles)
            elif key in state.handed_off:
                already_owned.extend(item.receipt_handles)
            elif (run_key := state.pending_run_for(key)) is not None:
                if run_exists(run_key):
                    already_owned.extend(item.receipt_handles)
                else:
                    state.pending[run_key]["receipts"].extend(item.receipt_handles)
            else:
                fresh[key] = item
                continue
            result.duplicates += 1
        result.errors.extend(self._delete(already_owned).failures)
        return list(fresh.values())

    def batches(self, received: list[ReceivedJob]) -> list[JobBatch]:
        """Each job type's rule (`JobType.group`, `JobType.most_per_run`) says which messages share a run."""
        groups: dict[tuple[str, str], list[ReceivedJob]] = {}
        for item in received:
            job_type = JOB_TYPES[item.job.type_name]
            groups.setdefault((job_type.name, job_type.group(item.job)), []).append(item)
        batches: list[JobBatch] = []
        for (type_name, _), members in groups.items():
            size = JOB_TYPES[type_name].run_size(self.limits.batch_size, self.limits.changelog_batch_size)
            batches.extend(JobBatch(type_name, chunk) for chunk in self._chunks(members, size))
        return batches

    def _chunks(self, members: list[ReceivedJob], size: int) -> list[list[ReceivedJob]]:
        """At most `size` members, and at most `run_body_bytes` of their bodies, per run (a member
        larger than that alone): the run's config carries every body, so a run that fails for good
        can give them back to the dead-letter queue."""
        chunks: list[list[ReceivedJob]] = []
        chunk_bytes = 0
        for member in members:
            body_bytes = len(member.body.encode())
            if not chunks or len(chunks[-1]) == size or chunk_bytes + body_bytes > self.limits.run_body_bytes:
                chunks.append([])
                chunk_bytes = 0
            chunks[-1].append(member)
            chunk_bytes += body_bytes
        return chunks

    # -- dead letters, deletes, counts -------------------------------------------------------------

    def _dead_letter(self, rejected: list[DeadLetter], result: TickResult) -> None:
        """Move rejected messages to the dead-letter queue with their reason and original body, each
        message once however many of its receipt handles the tick holds (a message received by two
        calls, or a batch member that came twice); delete from the main queue, by every one of its
        handles, only the messages the dead-letter queue accepted."""
        letters: dict[str, DeadLetter] = {}
        handles: dict[str, list[str]] = {}
        for letter in rejected:
            letters.setdefault(letter.message_id, letter)
            if letter.receipt_handle:
                handles.setdefault(letter.message_id, []).append(letter.receipt_handle)
        outcome = send_dead_letters(self.client, self.dead_letter_queue_url, list(letters.values()))
        result.errors.extend(outcome.errors)
        result.unreachable = outcome.unreachable
        sent_handles = [handle for letter in outcome.sent for handle in handles.get(letter.message_id, [])]
        result.errors.extend(self._delete(sent_handles).failures)
        result.dead_letters.extend(outcome.sent)

    def _delete(self, receipt_handles: list[str]) -> _DeleteOutcome:
        """DeleteMessageBatch on `limits.concurrent_calls` threads; after a call SQS did not answer, the
        rest waits for the next tick."""
        result = sqs.delete_messages(
            self.client, self.queue_url, receipt_handles, concurrent_calls=self.limits.concurrent_calls
        )
        outcome = _DeleteOutcome(deleted=len(result.succeeded), unanswered=set(result.unanswered))
        outcome.failures.extend(f"delete failed: {failure}" for _handle, failure in result.failed)
        if result.unanswered:
            outcome.failures.append(f"delete failed: {result.unanswered_error}")
        return outcome

    def queue_counts(self, result: TickResult | None = None) -> dict[str, int]:
        names = {
            "ApproximateNumberOfMessages": "queued",
            "ApproximateNumberOfMessagesNotVisible": "in_flight",
            "ApproximateNumberOfMessagesDelayed": "delayed",
        }
        counts: dict[str, int] = {}
        for prefix, url in (("", self.queue_url), ("dead_letter_", self.dead_letter_queue_url)):
            try:
                attributes = self.client.get_queue_attributes(QueueUrl=url, AttributeNames=list(names))
            except Exception as error:
                if result is not None:
                    result.errors.append(f"queue attributes failed: {error}")
                continue
            for name, label in names.items():
                counts[prefix + label] = int(attributes["Attributes"].get(name, 0))
        return counts
