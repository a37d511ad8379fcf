"""AWS resources: SQS, and SNS for changelog events and for alerts (dagster-aws ships S3 but neither of
these, so they are built on its boto3 configuration base, like its own RDS and SSM resources), and S3
with the project's client bounds.

Every client they hand out has a connect and a read timeout and a short retry (see
`jobs_orchestration.aws.clients`): an outage surfaces in seconds, and the ops' retry policies take it
from there.
"""

from __future__ import annotations

from typing import Any

from botocore.config import Config
from dagster_aws.s3 import S3Resource
from dagster_aws.utils import ResourceWithBoto3Configuration
from pydantic import Field

from jobs_orchestration.alerts import Alert, publish_alert, subject_line
from jobs_orchestration.aws.clients import (
    CLIENT_MAX_ATTEMPTS,
    aws_client,
    aws_client_config,
    intake_client_config,
)
from jobs_orchestration.failures import describe
from jobs_orchestration.settings import ALERTS_TOPIC_ARN, DEFAULTS

_MAX_ATTEMPTS_DESCRIPTION = (
    "Attempts of one AWS call, the first included; longer outages are retried by the ops' retry policies"
)


BOTO3_FIELDS = (
    "region_name",
    "endpoint_url",
    "profile_name",
    "use_ssl",
    "verify",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
)
"""The fields of dagster-aws's boto3 configuration that `aws_client` takes as they are."""


def boto3_client(
    resource: ResourceWithBoto3Configuration | S3Resource, service: str, config: Config | None = None
) -> Any:
    """A client configured by the resource's fields, bounded by `config` or else by its `max_attempts`;
    unset fields fall back to the environment (see `aws_client`)."""
    fields = {name: getattr(resource, name) for name in BOTO3_FIELDS}
    return aws_client(service, config=config or aws_client_config(resource.max_attempts), **fields)


class BoundedS3Resource(S3Resource):
    """dagster-aws's S3 resource, handing out clients with the project's timeouts and short retry."""

    max_attempts: int = Field(default=CLIENT_MAX_ATTEMPTS, description=_MAX_ATTEMPTS_DESCRIPTION)

    def get_client(self) -> Any:
        return boto3_client(self, "s3")


class SQSResource(ResourceWithBoto3Configuration):
    """The job queue and its dead-letter queue."""

    queue_url: str = Field(description="URL of the queue the platform's services send job messages to")
    dead_letter_queue_url: str = Field(
        description="URL of the queue that holds messages which could not be parsed or routed"
    )
    max_attempts: int = Field(default=CLIENT_MAX_ATTEMPTS, description=_MAX_ATTEMPTS_DESCRIPTION)

    def get_client(self) -> Any:
        return boto3_client(self, "sqs")

    def get_intake_client(self) -> Any:
        """A client for the intake's ticks: short timeouts, so a silent SQS cannot hold a tick long."""
        return boto3_client(self, "sqs", intake_client_config())


class SNSResource(ResourceWithBoto3Configuration):
    """The topic dataset changelog events are published to."""

    topic_arn: str = Field(description="ARN of the changelog SNS topic")
    max_attempts: int = Field(default=CLIENT_MAX_ATTEMPTS, description=_MAX_ATTEMPTS_DESCRIPTION)

    def get_client(self) -> Any:
        return boto3_client(self, "sns")


class AlertsResource(ResourceWithBoto3Configuration):
    """Where alerts go: an SNS topic, or only the log when no topic is configured."""

    topic_arn: str = Field(
        default="",
        description="ARN of the SNS topic alerts are published to (ALERTS_TOPIC_ARN); empty: log only",
    )
    webserver_url: str = Field(
        default=DEFAULTS.dagster_webserver_url,
        description="Base URL of the Dagster UI, for the links in alerts (DAGSTER_WEBSERVER_URL)",
    )

    def get_client(self) -> Any:
        """Alerts are sent from sensor ticks: the intake's short timeouts and 2 attempts, so a silent SNS
        cannot hold a tick long."""
        return boto3_client(self, "sns", intake_client_config())

    def send(self, alert: Alert, log: Any) -> bool:
        """Publish the alert, or log that it was not sent (no topic). Returns whether it was published;
        raises what SNS raised, after logging the alert, so a failure to alert is not silent either."""
        if not self.topic_arn:
            log.warning(
                f"alert not sent ({ALERTS_TOPIC_ARN} is not set): {subject_line(alert)}\n{alert.text}"
            )
            return False
        try:
            message_id = publish_alert(self.get_client(), self.topic_arn, alert)
        except Exception as error:
            log.error(f"alert could not be published: {describe(error)}\n{subject_line(alert)}\n{alert.text}")
            raise
        log.info(f"alert published ({message_id}): {subject_line(alert)}")
        return True
