"""The LocalStack helper the benchmarks use: it starts LocalStack from `.tools/localstack-venv`,
provisions what the moto stack gets, and stops it leaving no process.

Marked `localstack`: `make test` leaves it out (a fresh clone need not download LocalStack);
`make localstack-test` installs LocalStack and runs it. Without the virtual environment it fails,
naming `make localstack`."""

from __future__ import annotations

import json

import psutil
import pytest

from jobs_orchestration.devstack.aws import (
    ALERTS_TOPIC_NAME,
    CHANGELOG_TOPIC_NAME,
    DATASET_BUCKET,
    JOB_QUEUE_NAME,
    MAX_RECEIVE_COUNT,
    SNAPSHOT_BUCKET,
    TIMESERIES_BUCKET,
)
from jobs_orchestration.devstack.localstack import localstack_aws, reset_localstack

pytestmark = pytest.mark.localstack


def test_localstack_starts_provisions_the_moto_stacks_resources_and_stops_leaving_no_process():
    with localstack_aws() as (server, aws):
        pid = server.process.pid
        sqs, sns, s3 = aws.client("sqs"), aws.client("sns"), aws.client("s3")
        assert aws.queue_url.startswith(server.endpoint_url) and aws.queue_url.endswith(JOB_QUEUE_NAME)
        attributes = sqs.get_queue_attributes(QueueUrl=aws.queue_url, AttributeNames=["All"])["Attributes"]
        redrive = json.loads(attributes["RedrivePolicy"])
        assert redrive["deadLetterTargetArn"].endswith(":background_job_queue-dead-letter")
        assert int(redrive["maxReceiveCount"]) == MAX_RECEIVE_COUNT
        topics = {topic["TopicArn"].rsplit(":", 1)[1] for topic in sns.list_topics()["Topics"]}
        assert {CHANGELOG_TOPIC_NAME, ALERTS_TOPIC_NAME} <= topics
        buckets = {bucket["Name"] for bucket in s3.list_buckets()["Buckets"]}
        assert {DATASET_BUCKET, TIMESERIES_BUCKET, SNAPSHOT_BUCKET} <= buckets

        sqs.send_message(QueueUrl=aws.queue_url, MessageBody="hello")
        received = sqs.receive_message(QueueUrl=aws.queue_url, WaitTimeSeconds=1)["Messages"]
        assert [message["Body"] for message in received] == ["hello"]

        reset_localstack(server.endpoint_url)
        assert sqs.list_queues().get("QueueUrls", []) == []
        children = [process.pid for process in psutil.Process(pid).children(recursive=True)]
    assert server.process is None
    assert not any(
        psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in [pid, *children]
    )
