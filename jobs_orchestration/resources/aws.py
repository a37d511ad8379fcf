"""SQS and SNS resources. dagster-aws ships S3 but neither of these, so they are built on its boto3
configuration base, like its own RDS and SSM resources."""

from __future__ import annotations

from typing import Any

import boto3
from dagster_aws.utils import ResourceWithBoto3Configuration, construct_boto_client_retry_config
from pydantic import Field


def boto3_client(resource: ResourceWithBoto3Configuration, service: str) -> Any:
    """A boto3 client configured by the resource's fields; unset fields fall back to boto3's own
    environment lookup (AWS_REGION, AWS_ENDPOINT_URL, credentials chain)."""
    session = boto3.session.Session(profile_name=resource.profile_name)
    return session.client(
        service,
        region_name=resource.region_name,
        endpoint_url=resource.endpoint_url,
        use_ssl=resource.use_ssl,
        verify=resource.verify,
        aws_access_key_id=resource.aws_access_key_id,
        aws_secret_access_key=resource.aws_secret_access_key,
        aws_session_token=resource.aws_session_token,
        config=construct_boto_client_retry_config(resource.max_attempts),
    )


class SQSResource(ResourceWithBoto3Configuration):
    """The job queue and its dead-letter queue."""

    queue_url: str = Field(description="URL of the queue the platform's services send job messages to")
    dead_letter_queue_url: str = Field(
        description="URL of the queue that holds messages which could not be parsed or routed"
    )

    def get_client(self) -> Any:
        return boto3_client(self, "sqs")


class SNSResource(ResourceWithBoto3Configuration):
    """The topic dataset changelog events are published to."""

    topic_arn: str = Field(description="ARN of the changelog SNS topic")

    def get_client(self) -> Any:
        return boto3_client(self, "sns")
