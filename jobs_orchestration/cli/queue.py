"""`jobs-orchestration enqueue ...` and `jobs-orchestration dlq ...`: put job messages on the queue the
way the platform's services do, and inspect or replay dead letters."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import click
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ReadTimeoutError,
)

from jobs_orchestration import settings
from jobs_orchestration.aws.clients import (
    COMMAND_LINE_CONNECT_TIMEOUT_SECONDS,
    COMMAND_LINE_MAX_ATTEMPTS,
    COMMAND_LINE_READ_TIMEOUT_SECONDS,
    aws_client,
    command_line_client_config,
)
from jobs_orchestration.intake.job_types import JobModel
from jobs_orchestration.intake.messages import (
    JOB_TYPES,
    CachePopulationJob,
    DatasetChangelogEventJob,
    DeleteDatasetJob,
    DeletePackageJob,
    MessageRejected,
    job_body,
    parse_job_message,
)
from jobs_orchestration.intake.redrive import (
    RedriveChoice,
    attribute,
    read_dead_letters,
    redrive_dead_letters,
    release,
)

queue_url_option = click.option(
    "--queue-url", envvar=settings.JOBS_QUEUE_URL, show_envvar=True, required=True, help="The job queue."
)
dead_letter_url_option = click.option(
    "--dead-letter-queue-url",
    envvar=settings.JOBS_DEAD_LETTER_QUEUE_URL,
    show_envvar=True,
    required=True,
    help="The job queue's dead-letter queue.",
)
endpoint_option = click.option(
    "--endpoint-url",
    envvar=settings.AWS_ENDPOINT_URL,
    show_envvar=True,
    default=None,
    help="An SQS endpoint other than AWS's (the local emulator).",
)
organization_option = click.option("--organization-id", type=int, required=True)
user_option = click.option("--user-id", required=True, help="Node id of the user, e.g. N:user:...")
trace_option = click.option("--trace-id", default=None, help="Correlates logs; a fresh one by default.")
job_id_option = click.option(
    "--id", "job_id", default=None, help="The producer's job id; a fresh UUID by default."
)


@contextlib.contextmanager
def sqs_client(endpoint_url: str | None) -> Iterator[Any]:
    """An SQS client with the command line's bounds. A call that fails ends the command with one line
    naming the endpoint and what happened, no traceback, so an endpoint nothing serves any more (a
    `.local/env` left by a stack that stopped) is plain to see."""
    try:
        client = aws_client("sqs", endpoint_url=endpoint_url, config=command_line_client_config())
    except NoRegionError:
        raise click.ClickException(
            f"no AWS region: set {settings.AWS_REGION} (or AWS_DEFAULT_REGION, or a profile's region)"
        ) from None
    try:
        yield client
    except (BotoCoreError, ClientError) as error:
        raise click.ClickException(f"SQS at {client.meta.endpoint_url} {_what_happened(error)}") from None


def _what_happened(error: BotoCoreError | ClientError) -> str:
    if isinstance(error, ReadTimeoutError):
        return (
            f"did not answer within {COMMAND_LINE_READ_TIMEOUT_SECONDS} s "
            f"({COMMAND_LINE_MAX_ATTEMPTS} attempts)"
        )
    if isinstance(error, ConnectTimeoutError):
        return (
            f"could not connect within {COMMAND_LINE_CONNECT_TIMEOUT_SECONDS} s "
            f"({COMMAND_LINE_MAX_ATTEMPTS} attempts)"
        )
    if isinstance(error, EndpointConnectionError):
        return f"could not connect: {_reason(error)} ({COMMAND_LINE_MAX_ATTEMPTS} attempts)"
    if isinstance(error, ConnectionClosedError):
        return "closed the connection without answering"
    if isinstance(error, NoCredentialsError):
        return "was not called: no AWS credentials found (variables, profile or role)"
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"refused the call: {details.get('Code', '?')}: {_one_line(details.get('Message', ''))}"
    return f"failed: {_one_line(error)}"


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _reason(error: BaseException) -> str:
    """The operating system's words for a failed connection ('Connection refused'), found among the
    errors botocore wraps it in."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        seen = seen.__cause__ or seen.__context__
    return "the connection failed"


@click.group()
def enqueue() -> None:
    """Put a job message on the queue, exactly as the platform's services write it."""


def _send(queue_url: str, endpoint_url: str | None, body: str, *, validate: bool = True) -> None:
    if validate:
        try:
            parse_job_message(body)
        except MessageRejected as rejected:
            raise click.BadParameter(rejected.reason) from None
    with sqs_client(endpoint_url) as client:
        message_id = client.send_message(QueueUrl=queue_url, MessageBody=body)["MessageId"]
    click.echo(message_id)


def _send_job(queue_url: str, endpoint_url: str | None, model: type[JobModel], **fields: Any) -> None:
    """Send the body the model writes for these fields (by attribute or camelCase name), as the
    producers do."""
    try:
        body = job_body(model, **fields)
    except MessageRejected as rejected:
        raise click.BadParameter(rejected.reason) from None
    _send(queue_url, endpoint_url, body)


def _fresh(value: str | None) -> str:
    return value or str(uuid.uuid4())


def deletion_options(command: Any) -> Any:
    """The options every deletion command takes besides its target, in this order in --help."""
    for option in reversed(
        [organization_option, user_option, trace_option, job_id_option, queue_url_option, endpoint_option]
    ):
        command = option(command)
    return command


@enqueue.command("delete-package")
@click.option("--package-id", type=int, required=True)
@deletion_options
def delete_package(trace_id, job_id, queue_url, endpoint_url, **fields) -> None:
    """Delete a package (already set to DELETING) and everything under it."""
    # The options carry the model's attribute names (package_id, organization_id, user_id).
    _send_job(
        queue_url, endpoint_url, DeletePackageJob, trace_id=_fresh(trace_id), id=_fresh(job_id), **fields
    )


@enqueue.command("delete-dataset")
@click.option("--dataset-id", type=int, required=True)
@deletion_options
def delete_dataset(trace_id, job_id, queue_url, endpoint_url, **fields) -> None:
    """Delete a dataset (already set to DELETING) with all its packages."""
    # The options carry the model's attribute names (dataset_id, organization_id, user_id).
    _send_job(
        queue_url, endpoint_url, DeleteDatasetJob, trace_id=_fresh(trace_id), id=_fresh(job_id), **fields
    )


@enqueue.command("cache-population")
@click.option("--organization-id", type=int, default=None, help="One organization; all when omitted.")
@click.option("--dry-run", is_flag=True, help="Compute and report the totals, write nothing.")
@job_id_option
@queue_url_option
@endpoint_option
def cache_population(organization_id, dry_run, job_id, queue_url, endpoint_url) -> None:
    """Refresh storage totals of one organization, or of all."""
    # Without an organization the producers leave the field out.
    organization = {} if organization_id is None else {"organization_id": organization_id}
    _send_job(queue_url, endpoint_url, CachePopulationJob, dry_run=dry_run, id=_fresh(job_id), **organization)


@enqueue.command("changelog")
@organization_option
@click.option("--dataset-id", type=int, required=True)
@user_option
@click.option(
    "--event", "event_types", multiple=True, required=True, help="Event type, e.g. UPDATE_NAME (repeatable)."
)
@click.option(
    "--detail",
    "details",
    multiple=True,
    help='The event detail as JSON, e.g. \'{"oldName": "a", "newName": "b"}\'; the n-th --detail goes with '
    "the n-th --event; {} when omitted.",
)
@trace_option
@job_id_option
@queue_url_option
@endpoint_option
def changelog(
    organization_id, dataset_id, user_id, event_types, details, trace_id, job_id, queue_url, endpoint_url
) -> None:
    """Record dataset changelog events and publish them."""
    if len(details) > len(event_types):
        raise click.BadParameter("more --detail than --event", param_hint="--detail")
    events = []
    for index, event_type in enumerate(event_types):
        text = details[index] if index < len(details) else "{}"
        try:
            detail = json.loads(text)
        except json.JSONDecodeError as error:
            raise click.BadParameter(f"{text!r} is not JSON: {error}", param_hint="--detail") from None
        events.append({"eventType": event_type, "eventDetail": detail})
    _send_job(
        queue_url,
        endpoint_url,
        DatasetChangelogEventJob,
        organization_id=organization_id,
        dataset_id=dataset_id,
        user_id=user_id,
        trace_id=_fresh(trace_id),
        events=events,
        id=_fresh(job_id),
    )


@enqueue.command("job")
@click.argument("type_name", metavar="TYPE")
@click.argument("fields", nargs=-1, metavar="FIELD=VALUE...")
@queue_url_option
@endpoint_option
def any_job(type_name, fields, queue_url, endpoint_url) -> None:
    """A job of any TYPE the intake accepts (DeletePackageJob, ...), its fields given by their names in
    the message (camelCase), e.g. `organizationId=7 asOf=2026-11-30`. A VALUE that reads as JSON is
    taken as JSON (7, true, {...}; quote a number meant as text: id='"42"'), any other as text. `id`,
    and `traceId` where the type has one, are fresh unless given."""
    job_type = JOB_TYPES.get(type_name)
    if job_type is None:
        known = ", ".join(sorted(JOB_TYPES))
        raise click.BadParameter(f"unknown job type {type_name!r}; known: {known}", param_hint="TYPE")
    values: dict[str, Any] = {}
    for pair in fields:
        name, equals, text = pair.partition("=")
        if not equals or not name:
            raise click.BadParameter(f"{pair!r} is not FIELD=VALUE", param_hint="FIELD=VALUE")
        try:
            values[name] = json.loads(text)
        except json.JSONDecodeError:
            values[name] = text
    values.setdefault("id", _fresh(None))
    if "trace_id" in job_type.model.model_fields:
        values.setdefault("traceId", _fresh(None))
    _send_job(queue_url, endpoint_url, job_type.model, **values)


@enqueue.command("raw")
@click.argument("body")
@click.option("--no-validate", is_flag=True, help="Send even a body the intake would reject (to test it).")
@queue_url_option
@endpoint_option
def raw(body, no_validate, queue_url, endpoint_url) -> None:
    """Send BODY as it is (checked first unless --no-validate)."""
    _send(queue_url, endpoint_url, body, validate=not no_validate)


@click.group()
def dlq() -> None:
    """Inspect and replay messages the intake dead-lettered."""


limit_option = click.option(
    "--limit", type=click.IntRange(min=1), default=1000, show_default=True, help="Messages to look at."
)


@dlq.command("list")
@limit_option
@dead_letter_url_option
@endpoint_option
def list_dead_letters(limit, dead_letter_queue_url, endpoint_url) -> None:
    """Print each dead letter as one JSON line: its id, source message id, reason, who dead-lettered it
    (intake, run or run_failure), the run it came from and its body."""
    with sqs_client(endpoint_url) as client:
        messages = list(read_dead_letters(client, dead_letter_queue_url, limit))
        for message in messages:
            line = {
                "message_id": message["MessageId"],
                "source_message_id": attribute(message, "source_message_id"),
                "reason": attribute(message, "reason"),
                "dead_lettered_by": attribute(message, "dead_lettered_by"),
                "run_id": attribute(message, "run_id"),
                "body": message["Body"],
            }
            click.echo(json.dumps(line))
        release(client, dead_letter_queue_url, messages)


@dlq.command("redrive")
@click.option(
    "--id",
    "ids",
    multiple=True,
    help="Dead letter's message id or source message id (repeatable); all by default.",
)
@limit_option
@queue_url_option
@dead_letter_url_option
@endpoint_option
def redrive(ids, limit, queue_url, dead_letter_queue_url, endpoint_url) -> None:
    """Put dead letters back on the job queue (after fixing what rejected them) and remove them from the
    dead-letter queue."""
    with sqs_client(endpoint_url) as client:
        outcome = redrive_dead_letters(
            client, queue_url, dead_letter_queue_url, RedriveChoice(ids=frozenset(ids), look_at=limit)
        )
        for not_sent in outcome.not_sent:
            click.echo(f"not redriven: {not_sent}", err=True)
        for not_removed in outcome.not_removed:
            click.echo(f"redriven but still on the dead-letter queue: {not_removed}", err=True)
        click.echo(f"redrove {len(outcome.moved)} message(s)")
        if outcome.missing_ids:
            raise click.ClickException(f"no dead letter with id {', '.join(outcome.missing_ids)}")


@dlq.command("purge")
@dead_letter_url_option
@endpoint_option
@click.confirmation_option(prompt="This deletes every dead letter. Continue?")
def purge(dead_letter_queue_url, endpoint_url) -> None:
    """Delete every dead letter."""
    with sqs_client(endpoint_url) as client:
        client.purge_queue(QueueUrl=dead_letter_queue_url)
    click.echo("purged the dead-letter queue")
