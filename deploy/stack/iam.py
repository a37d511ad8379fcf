"""Least-privilege task policies: one per component, each naming only the actions its code calls, on
only the resources it calls them on.

Where each call comes from (the project's code is in jobs_orchestration/, Dagster's in the venv):

| component | calls |
|---|---|
| code server | `sqs_jobs_sensor` (intake/handoff.py): ReceiveMessage, DeleteMessageBatch, GetQueueAttributes on the job queue; SendMessageBatch, GetQueueAttributes on the dead-letter queue. The run-failure sensor: SendMessage to the dead-letter queue. Alerts: Publish to the alerts topic. Tick logs of sensors and schedules: PutObject under the compute log prefix (S3ComputeLogManager). |
| daemon | EcsRunLauncher: DescribeTaskDefinition, RunTask (with tags), DescribeTasks on its own task and on run tasks, StopTask, DescribeNetworkInterfaces on its own task's interface, iam:PassRole of the run task's roles; run monitoring reads a failed run task's log (GetLogEvents). Backfill logs: PutObject under the compute log prefix. |
| webserver | EcsRunLauncher on instance load: DescribeTaskDefinition; terminating a run: DescribeTasks, StopTask. Compute logs: HeadObject/GetObject and ListObjectsV2 under the compute log prefix. |
| run tasks | Deletions (deletion/pipeline.py, aws/s3.py): GetBucketVersioning, ListObjectsV2, ListObjectVersions, DeleteObjects (with version ids where a bucket keeps versions) on the platform buckets. Snapshot cleanup (snapshots/store.py): DeleteObjects under the snapshot prefix. Changelog (changelog/publish.py): PublishBatch to the changelog topic. Poison members of a batch: SendMessage to the dead-letter queue; the redrive job: ReceiveMessage, ChangeMessageVisibility, DeleteMessage, GetQueueAttributes on the dead-letter queue and SendMessage back to the job queue. Run logs: PutObject under the compute log prefix (multipart uploads of large logs abort on failure). |

Batch calls are authorised by their single action: SendMessageBatch by sqs:SendMessage,
DeleteMessageBatch by sqs:DeleteMessage, PublishBatch by sns:Publish, DeleteObjects by s3:DeleteObject
(and s3:DeleteObjectVersion for the entries that name a version), HeadObject by s3:GetObject.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs

from deploy.stack.contract import COMPUTE_LOG_PREFIX
from deploy.stack.messaging import Messaging
from deploy.stack.storage import Storage

WILDCARD_RESOURCE_EXCEPTIONS: dict[str, str] = {
    "ecs:DescribeTaskDefinition": (
        "DescribeTaskDefinition has no resource-level permissions. The EcsRunLauncher reads the run task "
        "definition when an instance loads it (webserver, daemon) and, to copy its network settings, "
        "the daemon's own task definition."
    ),
    "ec2:DescribeNetworkInterfaces": (
        "DescribeNetworkInterfaces has no resource-level permissions. The EcsRunLauncher reads the "
        "daemon task's network interface to start run tasks in the same subnets and security group."
    ),
    "ecr:GetAuthorizationToken": (
        "The registry login token is account-wide and AWS accepts only '*'. CDK grants it to each "
        "execution role so ECS can pull the image; the layer reads are limited to the repository."
    ),
}
"""The only actions allowed on Resource "*", and why AWS requires it. Nothing else may use a bare "*"
(the stack's tests check every policy in the template against this list)."""

ECS_TASKS_SERVICE = "ecs-tasks.amazonaws.com"


@dataclass(frozen=True)
class RunTaskTarget:
    """What the daemon launches and what the webserver may stop."""

    cluster: ecs.ICluster
    run_task_family: str
    run_task_role: iam.IRole
    run_execution_role: iam.IRole
    run_log_group: logs.ILogGroup


def task_role(scope, name: str, component: str) -> iam.Role:
    """A role only ECS tasks of this account may take on."""
    principal = iam.ServicePrincipal(ECS_TASKS_SERVICE).with_conditions(
        {
            "StringEquals": {"aws:SourceAccount": cdk.Aws.ACCOUNT_ID},
            "ArnLike": {
                "aws:SourceArn": f"arn:{cdk.Aws.PARTITION}:ecs:{cdk.Aws.REGION}:{cdk.Aws.ACCOUNT_ID}:*"
            },
        }
    )
    return iam.Role(scope, name, assumed_by=principal, description=f"Jobs orchestration {component}")


def attach(scope, name: str, role: iam.IRole, statements: list[iam.PolicyStatement]) -> iam.Policy:
    return iam.Policy(scope, name, statements=statements, roles=[role])


def code_server_statements(messaging: Messaging, storage: Storage) -> list[iam.PolicyStatement]:
    return [
        iam.PolicyStatement(
            sid="IntakeReceiveAndAcknowledge",
            actions=["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
            resources=[messaging.job_queue.queue_arn],
        ),
        iam.PolicyStatement(
            sid="DeadLetterRejectedAndFailedMessages",
            actions=["sqs:SendMessage", "sqs:GetQueueAttributes"],
            resources=[messaging.dead_letter_queue.queue_arn],
        ),
        # dead_letter_queue_sensor looks at the dead letters' reasons without consuming them: it
        # receives a few and makes them visible again at once.
        iam.PolicyStatement(
            sid="ObserveDeadLetters",
            actions=["sqs:ReceiveMessage", "sqs:ChangeMessageVisibility"],
            resources=[messaging.dead_letter_queue.queue_arn],
        ),
        iam.PolicyStatement(
            sid="PublishAlerts", actions=["sns:Publish"], resources=[messaging.alerts_topic.topic_arn]
        ),
        _write_compute_logs("WriteTickLogs", storage),
    ]


def daemon_statements(target: RunTaskTarget, storage: Storage, stack: cdk.Stack) -> list[iam.PolicyStatement]:
    return [
        iam.PolicyStatement(
            sid="LaunchRunTasks",
            actions=["ecs:RunTask"],
            resources=[_task_definition_family_arn(stack, target.run_task_family)],
            conditions={"ArnEquals": {"ecs:cluster": target.cluster.cluster_arn}},
        ),
        iam.PolicyStatement(
            sid="TagRunTasksAtLaunch",
            actions=["ecs:TagResource"],
            resources=[_tasks_in_cluster_arn(stack, target.cluster)],
            conditions={"StringEquals": {"ecs:CreateAction": "RunTask"}},
        ),
        _describe_and_stop_tasks("WatchAndStopTasks", target, stack),
        iam.PolicyStatement(
            sid="PassRunTaskRoles",
            actions=["iam:PassRole"],
            resources=[target.run_task_role.role_arn, target.run_execution_role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": ECS_TASKS_SERVICE}},
        ),
        _read_task_definitions(),
        iam.PolicyStatement(
            sid="ReadOwnNetworkInterface", actions=["ec2:DescribeNetworkInterfaces"], resources=["*"]
        ),
        iam.PolicyStatement(
            sid="ReadFailedRunLogs",
            actions=["logs:GetLogEvents"],
            resources=[_log_streams_arn(stack, target.run_log_group)],
        ),
        _write_compute_logs("WriteBackfillLogs", storage),
    ]


def webserver_statements(
    target: RunTaskTarget, storage: Storage, stack: cdk.Stack
) -> list[iam.PolicyStatement]:
    return [
        _read_task_definitions(),
        _describe_and_stop_tasks("TerminateRuns", target, stack),
        iam.PolicyStatement(
            sid="ReadComputeLogs",
            actions=["s3:GetObject"],
            resources=[storage.compute_log_bucket.arn_for_objects(f"{COMPUTE_LOG_PREFIX}/*")],
        ),
        iam.PolicyStatement(
            sid="ListComputeLogs",
            actions=["s3:ListBucket"],
            resources=[storage.compute_log_bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{COMPUTE_LOG_PREFIX}/*"]}},
        ),
    ]


def run_task_statements(
    messaging: Messaging, storage: Storage, snapshot_prefix: str
) -> list[iam.PolicyStatement]:
    platform = storage.platform_buckets
    return [
        iam.PolicyStatement(
            sid="ListPlatformBuckets",
            actions=["s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketVersioning"],
            resources=[bucket.bucket_arn for bucket in platform],
        ),
        iam.PolicyStatement(
            sid="DeletePlatformObjects",
            actions=["s3:DeleteObject", "s3:DeleteObjectVersion"],
            resources=[bucket.arn_for_objects("*") for bucket in platform],
        ),
        iam.PolicyStatement(
            sid="DeleteExpiredSnapshots",
            actions=["s3:DeleteObject"],
            resources=[storage.snapshot_bucket.arn_for_objects(f"{snapshot_prefix}/*")],
        ),
        iam.PolicyStatement(
            sid="PublishChangelog", actions=["sns:Publish"], resources=[messaging.changelog_topic.topic_arn]
        ),
        iam.PolicyStatement(
            sid="DeadLetterAndRedrive",
            actions=[
                "sqs:SendMessage",
                "sqs:ReceiveMessage",
                "sqs:ChangeMessageVisibility",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
            ],
            resources=[messaging.dead_letter_queue.queue_arn],
        ),
        iam.PolicyStatement(
            sid="RedriveToJobQueue", actions=["sqs:SendMessage"], resources=[messaging.job_queue.queue_arn]
        ),
        _write_compute_logs("WriteRunLogs", storage, "s3:AbortMultipartUpload"),
    ]


def _write_compute_logs(sid: str, storage: Storage, *extra_actions: str) -> iam.PolicyStatement:
    return iam.PolicyStatement(
        sid=sid,
        actions=["s3:PutObject", *extra_actions],
        resources=[storage.compute_log_bucket.arn_for_objects(f"{COMPUTE_LOG_PREFIX}/*")],
    )


def _read_task_definitions() -> iam.PolicyStatement:
    # DescribeTaskDefinition supports no resource-level permissions.
    return iam.PolicyStatement(
        sid="ReadTaskDefinitions", actions=["ecs:DescribeTaskDefinition"], resources=["*"]
    )


def _describe_and_stop_tasks(sid: str, target: RunTaskTarget, stack: cdk.Stack) -> iam.PolicyStatement:
    """The daemon watches and stops the runs it launched; the UI stops a run an operator terminates."""
    return iam.PolicyStatement(
        sid=sid,
        actions=["ecs:DescribeTasks", "ecs:StopTask"],
        resources=[_tasks_in_cluster_arn(stack, target.cluster)],
    )


def _tasks_in_cluster_arn(stack: cdk.Stack, cluster: ecs.ICluster) -> str:
    return stack.format_arn(service="ecs", resource="task", resource_name=f"{cluster.cluster_name}/*")


def _task_definition_family_arn(stack: cdk.Stack, family: str) -> str:
    # Every revision of the family: a deploy registers a new one while the daemon may still launch the last.
    return stack.format_arn(service="ecs", resource="task-definition", resource_name=f"{family}:*")


def _log_streams_arn(stack: cdk.Stack, log_group: logs.ILogGroup) -> str:
    return stack.format_arn(
        service="logs",
        resource="log-group",
        resource_name=f"{log_group.log_group_name}:log-stream:*",
        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
    )
