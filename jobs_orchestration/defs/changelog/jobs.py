"""`dataset_changelog_job` (record, then publish) and `changelog_outbox_job` (publish leftovers)."""

import datetime as dt

import dagster as dg

from jobs_orchestration.changelog.publish import PublishReport, publish_outbox
from jobs_orchestration.changelog.record import IncomingEvent, IncomingMessage, record_messages
from jobs_orchestration.defs.changelog.config import (
    RECORD_CHANGELOG_EVENTS_OP,
    ChangelogEventConfig,
    ChangelogEventsConfig,
    ChangelogMessageConfig,
)
from jobs_orchestration.defs.job_messages import dead_letter_members, dead_lettered_by_run_family
from jobs_orchestration.defs.resources import PlatformDatabase, SNSResource, SQSResource
from jobs_orchestration.defs.retries import (
    OUTAGE_RETRY_POLICY,
    RETRY_WHOLE_RUN_TAGS,
    retry_only_transient_errors,
)

JOB_FAMILY_TAGS = {"job_family": "changelog"}
JOB_TAGS = {**JOB_FAMILY_TAGS, **RETRY_WHOLE_RUN_TAGS}


@dg.op(name=RECORD_CHANGELOG_EVENTS_OP, tags=JOB_FAMILY_TAGS)
def record_changelog_events(
    context: dg.OpExecutionContext,
    config: ChangelogEventsConfig,
    platform_db: PlatformDatabase,
    sqs: SQSResource,
) -> dict:
    """Store the events of every acceptable message as unpublished outbox rows, in one transaction.

    A message whose organization, user or dataset is unknown, whose details do not decode, or whose
    rows the database refuses, is refused whole and dead-lettered with the reason; the others are
    recorded and published. A refused launch from the UI (no message) fails the run at the end.
    """
    with retry_only_transient_errors():
        already_dead = _dead_lettered_before(context, config.messages)
        configs = [message for message in config.messages if not _is_in(message, already_dead)]
        messages = [_incoming(message) for message in configs]
        fallback_job_ids = [f"run-{context.run_id}-{index}" for index in range(len(messages))]
        with platform_db.begin() as connection:
            result = record_messages(
                connection, messages, fallback_job_ids=fallback_job_ids, dagster_run_id=context.run_id
            )
        refused: dict[str, str] = {}
        poison = []
        for message, outcome in zip(configs, result.outcomes, strict=True):
            reason = outcome.refused_reason
            if reason is None:
                continue
            context.log.error(f"changelog message {outcome.job_id} refused: {reason}")
            if message.source is None:
                refused[outcome.job_id] = reason
            else:
                poison.append((message.source, f"refused: {reason}"))
        dead_letter_members(context, sqs, poison)
    context.add_output_metadata(
        {
            "messages": len(config.messages),
            "events_recorded": result.inserted,
            "events_already_recorded": len(result.event_ids) - result.inserted,
            "messages_refused": len(result.refused),
            "dead_lettered": len(poison),
        }
    )
    return {"event_ids": result.event_ids, "refused": refused}


def _dead_lettered_before(context: dg.OpExecutionContext, messages: list[ChangelogMessageConfig]) -> set[str]:
    """Messages an earlier try of this run already dead-lettered: they are not tried again."""
    if not any(message.source is not None for message in messages):
        return set()
    return dead_lettered_by_run_family(context.instance, context.run)


def _is_in(message: ChangelogMessageConfig, message_ids: set[str]) -> bool:
    return message.source is not None and message.source.message_id in message_ids


@dg.op(tags=JOB_FAMILY_TAGS)
def publish_changelog_events(
    context: dg.OpExecutionContext, recorded: dict, platform_db: PlatformDatabase, sns: SNSResource
) -> None:
    """Publish this run's events still unpublished (also those an earlier delivery left behind).

    PublishBatch failures are retried within the op (only the failed entries); what still fails
    stays in the outbox for `changelog_outbox_sensor`, and the run fails so people see the outage.
    """
    with retry_only_transient_errors():
        report = publish_outbox(
            platform_db.engine, sns.get_client(), sns.topic_arn, event_ids=recorded["event_ids"]
        )
    _report(context, report)
    if report.failed:
        raise dg.Failure(
            f"{_not_published(report)} not published yet; they stay in the outbox",
            metadata={"errors": dg.MetadataValue.json(report.errors)},
        )
    if recorded["refused"]:
        raise dg.Failure(
            description=f"{len(recorded['refused'])} changelog message(s) refused; the others were recorded",
            metadata={"refused": dg.MetadataValue.json(recorded["refused"])},
            allow_retries=False,
        )


@dg.job(
    tags=JOB_TAGS,
    # Recording is idempotent (stable event ids) and publishing takes only unpublished rows, so either
    # step can run again after an outage of the database or of SNS.
    op_retry_policy=OUTAGE_RETRY_POLICY,
    description="Record dataset changelog events (a transactional outbox) and publish them to SNS.",
    config=dg.RunConfig(
        ops={
            RECORD_CHANGELOG_EVENTS_OP: ChangelogEventsConfig(
                messages=[
                    ChangelogMessageConfig(
                        organization_id=1,
                        dataset_id=1,
                        user_id="N:user:00000000-0000-0000-0000-000000000001",
                        events=[
                            ChangelogEventConfig(
                                event_type="UPDATE_NAME",
                                event_detail_json='{"oldName": "old name", "newName": "new name"}',
                                timestamp="2021-06-01T12:00:00Z",
                            )
                        ],
                    )
                ]
            )
        }
    ),
)
def dataset_changelog_job() -> None:
    publish_changelog_events(record_changelog_events())


class OutboxSweepConfig(dg.Config):
    min_age_seconds: int = 60
    """Rows younger than this are left to the run that recorded them."""
    max_publish_attempts: int = 50
    """Rows that failed this many times are left for a person (see last_publish_error)."""


@dg.op(tags=JOB_FAMILY_TAGS)
def publish_changelog_outbox(
    context: dg.OpExecutionContext, config: OutboxSweepConfig, platform_db: PlatformDatabase, sns: SNSResource
) -> None:
    """Publish every unpublished changelog row older than `min_age_seconds`."""
    with retry_only_transient_errors():
        report = publish_outbox(
            platform_db.engine,
            sns.get_client(),
            sns.topic_arn,
            recorded_before=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=config.min_age_seconds),
            max_attempts_so_far=config.max_publish_attempts,
        )
    _report(context, report)
    if report.failed:
        raise dg.Failure(
            f"{_not_published(report)} still not published",
            metadata={"errors": dg.MetadataValue.json(report.errors)},
        )


@dg.job(
    tags=JOB_TAGS,
    op_retry_policy=OUTAGE_RETRY_POLICY,
    description="Publish changelog events a crash or an SNS outage left unpublished.",
)
def changelog_outbox_job() -> None:
    publish_changelog_outbox()


def _incoming(message: ChangelogMessageConfig) -> IncomingMessage:
    return IncomingMessage(
        organization_id=message.organization_id,
        dataset_id=message.dataset_id,
        user_node_id=message.user_id,
        job_id=message.job_id,
        trace_id=message.trace_id,
        events=[
            IncomingEvent(event.event_type, event.event_detail_json, event.timestamp)
            for event in message.events
        ],
    )


def _not_published(report: PublishReport) -> str:
    if report.unreachable:
        return f"{report.unreachable}: {report.failed} changelog event(s) and any after them"
    return f"{report.failed} changelog event(s)"


def _report(context: dg.OpExecutionContext, report: PublishReport) -> None:
    context.add_output_metadata({"events_published": report.published, "events_unpublished": report.failed})
    for event_id, error in report.errors.items():
        context.log.warning(f"changelog event {event_id} not published: {error}")
