"""The job queue with its dead-letter queue, the changelog topic and the operators' alerts topic."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from deploy.stack.parameters import DeploymentParameters

MAX_RECEIVE_COUNT = 5
"""Receives after which SQS moves a message that never got acknowledged to the dead-letter queue
(the same as the local stack, jobs_orchestration/devstack/aws.py)."""
VISIBILITY_TIMEOUT = cdk.Duration.seconds(120)
"""How long a received message stays hidden: well above the intake's interval plus one tick, so the
next tick acknowledges it before it comes back."""
DEAD_LETTER_RETENTION = cdk.Duration.days(14)


@dataclass(frozen=True)
class Messaging:
    job_queue: sqs.Queue
    dead_letter_queue: sqs.Queue
    changelog_topic: sns.Topic
    alerts_topic: sns.Topic


def build_messaging(scope: Construct, parameters: DeploymentParameters) -> Messaging:
    dead_letter_queue = sqs.Queue(
        scope,
        "DeadLetterQueue",
        queue_name=parameters.dead_letter_queue_name.value_as_string,
        retention_period=DEAD_LETTER_RETENTION,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
    )
    job_queue = sqs.Queue(
        scope,
        "JobQueue",
        queue_name=parameters.job_queue_name.value_as_string,
        visibility_timeout=VISIBILITY_TIMEOUT,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        dead_letter_queue=sqs.DeadLetterQueue(queue=dead_letter_queue, max_receive_count=MAX_RECEIVE_COUNT),
    )
    # Topics without server-side encryption: the AWS-managed SNS key cannot be used by CloudWatch alarms
    # or by subscribers in other accounts, and a customer key would add KMS grants to every publisher.
    changelog_topic = sns.Topic(
        scope, "ChangelogTopic", topic_name=parameters.changelog_topic_name.value_as_string, enforce_ssl=True
    )
    alerts_topic = sns.Topic(
        scope, "AlertsTopic", topic_name=parameters.alerts_topic_name.value_as_string, enforce_ssl=True
    )
    _alarm_on_dead_letters(scope, dead_letter_queue, alerts_topic)
    return Messaging(job_queue, dead_letter_queue, changelog_topic, alerts_topic)


def _alarm_on_dead_letters(scope: Construct, dead_letter_queue: sqs.Queue, alerts_topic: sns.Topic) -> None:
    """Tell the operators as soon as a message lands in the dead-letter queue."""
    alarm = cloudwatch.Alarm(
        scope,
        "DeadLettersAlarm",
        alarm_description="Job messages are waiting in the dead-letter queue: inspect them with `jobs-orchestration dlq list`",
        metric=dead_letter_queue.metric_approximate_number_of_messages_visible(
            period=cdk.Duration.minutes(5), statistic="Maximum"
        ),
        threshold=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluation_periods=1,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    alarm.add_alarm_action(cloudwatch_actions.SnsAction(alerts_topic))
