"""A local AWS (moto in server mode, real HTTP on 127.0.0.1) and the resources the project needs in it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from jobs_orchestration import settings
from jobs_orchestration.aws.clients import aws_client

JOB_QUEUE_NAME = "background_job_queue"
DEAD_LETTER_QUEUE_NAME = "background_job_queue-dead-letter"
CHANGELOG_TOPIC_NAME = "dataset-changelog-events"
ALERTS_TOPIC_NAME = "jobs-orchestration-alerts"
DATASET_BUCKET = "platform-datasets"
DATASET_ASSETS_BUCKET = "platform-dataset-assets"
TIMESERIES_BUCKET = "platform-timeseries"
SNAPSHOT_BUCKET = "email-parser-snapshots"

MAX_RECEIVE_COUNT = 5
"""After this many receives without being deleted, SQS moves a message to the dead-letter queue."""
VISIBILITY_TIMEOUT_SECONDS = 120
"""How long a received message stays hidden: well above the sensor's interval plus one tick."""

LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local-access-key",
    "AWS_SECRET_ACCESS_KEY": "local-secret-key",
    settings.AWS_REGION: "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass(frozen=True)
class LocalAws:
    endpoint_url: str
    queue_url: str
    dead_letter_queue_url: str
    topic_arn: str
    region: str = "us-east-1"
    alerts_topic_arn: str = ""

    def environment(self) -> dict[str, str]:
        """The environment variables that point the project at this local AWS."""
        return {
            **LOCAL_CREDENTIALS,
            settings.AWS_ENDPOINT_URL: self.endpoint_url,
            settings.JOBS_QUEUE_URL: self.queue_url,
            settings.JOBS_DEAD_LETTER_QUEUE_URL: self.dead_letter_queue_url,
            settings.CHANGELOG_TOPIC_ARN: self.topic_arn,
            settings.ALERTS_TOPIC_ARN: self.alerts_topic_arn,
            settings.TIMESERIES_BUCKET: TIMESERIES_BUCKET,
        }

    def client(self, service: str) -> Any:
        return aws_client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )


def start_moto_server(host: str = "127.0.0.1", port: int = 0):
    """Start moto's HTTP server in a thread of this process; returns (server, endpoint URL)."""
    import logging

    from moto.server import ThreadedMotoServer

    # One access-log line per request would drown everything else the stack prints.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    bound_host, bound_port = server.get_host_and_port()
    return server, f"http://{bound_host}:{bound_port}"


def reset_moto(endpoint_url: str) -> None:
    """Forget every queue, topic, bucket and object the server holds."""
    import urllib.request

    request = urllib.request.Request(f"{endpoint_url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass


def provision(endpoint_url: str, region: str = "us-east-1") -> LocalAws:
    """Create the job queue with its dead-letter queue, the changelog and alerts topics and the buckets."""
    probe = LocalAws(endpoint_url, "", "", "", region)
    sqs = probe.client("sqs")
    dead_letter_queue_url = sqs.create_queue(QueueName=DEAD_LETTER_QUEUE_NAME)["QueueUrl"]
    dead_letter_arn = sqs.get_queue_attributes(QueueUrl=dead_letter_queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=JOB_QUEUE_NAME,
        Attributes={
            "VisibilityTimeout": str(VISIBILITY_TIMEOUT_SECONDS),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}
            ),
        },
    )["QueueUrl"]
    topic_arn = probe.client("sns").create_topic(Name=CHANGELOG_TOPIC_NAME)["TopicArn"]
    alerts_topic_arn = probe.client("sns").create_topic(Name=ALERTS_TOPIC_NAME)["TopicArn"]
    s3 = probe.client("s3")
    for bucket in (DATASET_BUCKET, DATASET_ASSETS_BUCKET, TIMESERIES_BUCKET, SNAPSHOT_BUCKET):
        s3.create_bucket(Bucket=bucket)
    return LocalAws(endpoint_url, queue_url, dead_letter_queue_url, topic_arn, region, alerts_topic_arn)
