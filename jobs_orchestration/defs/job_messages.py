"""The job messages a run holds, and how a run gives them to the dead-letter queue.

A run started by `sqs_jobs_sensor` carries each message's SQS id and original body in its config (a
`source` beside each request, or `sources` where a run collapses repeats). The message left the queue
when the run was created, so from then on the run is what remembers it:

- a member of a batch that fails for a reason of its own (its data, not an outage) is dead-lettered by
  the op, and the other members finish (`dead_letter_members`);
- a run that fails for good (after its retries, or with its worker killed) gives every message it held
  and had not already dead-lettered to the dead-letter queue (`run_failure_dead_letters_sensor`).

Each dead letter a run sends is also recorded as an observation of the `dead_letter_queue` asset in the
run's event log; that is how a retry of the run, or the failure sensor, knows not to send it again.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import dagster as dg
from pydantic import Field

from jobs_orchestration.defs.resources import SQSResource
from jobs_orchestration.intake.dead_letters import DeadLetter, send_dead_letters

DEAD_LETTER_QUEUE_ASSET = dg.AssetSpec(
    "dead_letter_queue",
    description="Job messages that could not be done: rejected by the intake, a batch member that failed "
    "for a reason of its own, or the messages of a run that failed for good. `jobs-orchestration dlq` "
    "lists and redrives them.",
    group_name="intake",
)


class SourceMessage(dg.Config):
    """A job message as it came off the queue."""

    message_id: str = Field(description="The message's SQS id")
    body: str = Field(description="The message body, unchanged")


class DeadLetteringFailed(ConnectionError):
    """The dead-letter queue did not take a member's message: the step fails, so its retry (or the run
    failure sensor) sends it again; nothing is acknowledged and then forgotten."""


def sources_in(run_config: Any) -> list[SourceMessage]:
    """Every message a run's config holds, each once, wherever the job's config keeps it."""
    found: dict[str, SourceMessage] = {}
    stack = [run_config]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "source" and isinstance(item, dict) and {"message_id", "body"} <= item.keys():
                    found.setdefault(item["message_id"], SourceMessage(**item))
                elif key == "sources" and isinstance(item, list):
                    for source in item:
                        found.setdefault(source["message_id"], SourceMessage(**source))
                else:
                    stack.append(item)
        elif isinstance(value, list):
            stack.extend(value)
    return list(found.values())


def dead_lettered_by_run_family(instance: dg.DagsterInstance, run: dg.DagsterRun) -> set[str]:
    """Message ids this run, or an earlier try of it (run retries start new runs), already sent to the
    dead-letter queue."""
    root_run_id = run.tags.get("dagster/root_run_id", run.run_id)
    run_ids = {run.run_id, root_run_id}
    run_ids.update(instance.get_run_ids(filters=dg.RunsFilter(tags={"dagster/root_run_id": root_run_id})))
    return {message_id for run_id in run_ids for message_id in _dead_lettered_in(instance, run_id)}


def _dead_lettered_in(instance: dg.DagsterInstance, run_id: str) -> Iterator[str]:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_OBSERVATION).records
    for record in records:
        observation = record.event_log_entry.asset_observation
        if observation is not None and observation.asset_key == DEAD_LETTER_QUEUE_ASSET.key:
            message_id = observation.metadata.get("source_message_id")
            if message_id is not None:
                yield str(message_id.value)


def dead_letter_members(
    context: dg.OpExecutionContext,
    sqs: SQSResource,
    members: Sequence[tuple[SourceMessage, str]],
) -> None:
    """Send each (message, reason) to the dead-letter queue and record it in the run; raises
    `DeadLetteringFailed` when the queue did not take them all."""
    if not members:
        return
    letters = [
        DeadLetter(source.message_id, source.body, reason, dead_lettered_by="run", run_id=context.run_id)
        for source, reason in members
    ]
    outcome = send_dead_letters(sqs.get_client(), sqs.dead_letter_queue_url, letters)
    for letter in outcome.sent:
        context.log.warning(f"message {letter.message_id} moved to the dead-letter queue: {letter.reason}")
        context.log_event(dead_letter_observation(letter))
    if not outcome.all_sent:
        raise DeadLetteringFailed("; ".join(outcome.errors) or "the dead-letter queue did not answer")


def dead_letter_observation(letter: DeadLetter) -> dg.AssetObservation:
    return dg.AssetObservation(
        asset_key=DEAD_LETTER_QUEUE_ASSET.key,
        metadata={
            "source_message_id": letter.message_id,
            "reason": letter.reason,
            "dead_lettered_by": letter.dead_lettered_by,
            **({"run_id": letter.run_id} if letter.run_id else {}),
        },
    )
