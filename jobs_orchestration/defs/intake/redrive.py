"""`redrive_dead_letters_job`: what `jobs-orchestration dlq redrive` does, launched from the UI.

Both go through `jobs_orchestration.intake.redrive`. The launchpad starts with no config: the operator
says how many dead letters to move (and may narrow them by reason or by id), so a launch as shown
never moves the whole queue by accident. The job has no retry policy: a second attempt would choose
again and could move more than was asked for.
"""

import time

import dagster as dg
from pydantic import Field

from jobs_orchestration.defs.intake.dead_letter_queue import queue_check_evaluation, queue_observation
from jobs_orchestration.defs.resources import SQSResource
from jobs_orchestration.intake.dead_letter_summary import summarize_dead_letter_queue
from jobs_orchestration.intake.redrive import RedriveChoice, redrive_dead_letters

REDRIVE_OP = "redrive_dead_letters"
MAX_LOOK_AT = 10_000


class RedriveDeadLettersConfig(dg.Config):
    max_messages: int = Field(
        ge=1, description="Move at most this many dead letters back to the job queue (required)"
    )
    reason_contains: str = Field(
        default="",
        description="Only dead letters whose reason contains this text, case ignored (`jobs-orchestration "
        "dlq list` and the dead_letter_queue asset show the reasons); empty: any reason",
    )
    message_ids: list[str] = Field(
        default=[],
        description="Only these dead letters: their own message ids or their source message ids; empty: any",
    )
    look_at: int = Field(default=1000, ge=1, le=MAX_LOOK_AT, description="Dead letters read to choose from")


@dg.op(name=REDRIVE_OP)
def redrive_dead_letters_op(
    context: dg.OpExecutionContext, config: RedriveDeadLettersConfig, sqs: SQSResource
) -> dg.Output[int]:
    choice = RedriveChoice(
        ids=frozenset(i.strip() for i in config.message_ids if i.strip()),
        reason_contains=config.reason_contains.strip(),
        max_messages=config.max_messages,
        look_at=config.look_at,
    )
    client = sqs.get_client()
    outcome = redrive_dead_letters(client, sqs.queue_url, sqs.dead_letter_queue_url, choice)
    for message in outcome.moved:
        context.log.info(f"dead letter {message['MessageId']} is back on the job queue")
    for not_sent in outcome.not_sent:
        context.log.error(f"not redriven: {not_sent}")
    for not_removed in outcome.not_removed:
        context.log.error(f"redriven but still on the dead-letter queue: {not_removed}")
    # The queue as it is now, so the asset and its check do not wait for the sensor's next look.
    now = time.time()
    summary = summarize_dead_letter_queue(client, sqs.dead_letter_queue_url)
    context.log_event(queue_observation(summary, now))
    # log_event records a check evaluation too; its annotation names only the older event types.
    context.log_event(queue_check_evaluation(summary, now))  # type: ignore[arg-type]
    metadata = {
        "moved": dg.MetadataValue.int(len(outcome.moved)),
        "moved_message_ids": dg.MetadataValue.json(outcome.moved_ids),
        "looked_at": dg.MetadataValue.int(outcome.looked_at),
        "not_sent": dg.MetadataValue.json(outcome.not_sent),
        "not_removed": dg.MetadataValue.json(outcome.not_removed),
        "ids_not_found": dg.MetadataValue.json(outcome.missing_ids),
        "left_on_dead_letter_queue": dg.MetadataValue.int(summary.depth),
    }
    problems = []
    if outcome.missing_ids:
        problems.append(
            f"no dead letter with id {', '.join(outcome.missing_ids)} among the {outcome.looked_at} read"
        )
    if outcome.not_sent:
        problems.append(
            f"{len(outcome.not_sent)} dead letter(s) the job queue refused: {'; '.join(outcome.not_sent)}"
        )
    if outcome.not_removed:
        problems.append(
            f"{len(outcome.not_removed)} redriven dead letter(s) the dead-letter queue did not delete: "
            + "; ".join(outcome.not_removed)
        )
    if not outcome.moved and not problems:
        problems.append(
            f"no dead letter matched (read {outcome.looked_at}"
            + (f", reason containing {choice.reason_contains!r}" if choice.reason_contains else "")
            + "): nothing was moved"
        )
    if problems:
        raise dg.Failure(
            description=f"{len(outcome.moved)} moved; " + "; ".join(problems),
            metadata=metadata,
            allow_retries=False,
        )
    context.log.info(
        f"redrove {len(outcome.moved)} message(s); {summary.depth} left on the dead-letter queue"
    )
    return dg.Output(len(outcome.moved), metadata=metadata)


@dg.job(
    description="Put dead letters back on the job queue (after fixing what made them fail) and remove them "
    "from the dead-letter queue: `jobs-orchestration dlq redrive` from the UI. Say how many; optionally "
    "which reason or which message ids.",
    tags={"job_family": "intake"},
)
def redrive_dead_letters_job() -> None:
    redrive_dead_letters_op()
