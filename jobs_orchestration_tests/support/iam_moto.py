"""A moto server of its own that enforces IAM, holding the stack's queues, topics and buckets and one
IAM user per component whose only policy is that component's task policy from the synthesized
template (its CloudFormation references resolved to the emulator's ARNs).

The session's shared moto server does not check credentials; this one does, once `enforce()` has been
called: moto answers the first INITIAL_NO_AUTH_ACTION_COUNT requests unauthenticated (here: the
provisioning) and checks every later one against the caller's policies. See
/work/shared/design/iam-on-moto.md for where moto's checks can be trusted (SQS) and where not (S3 lets
too much through, SNS refuses even what is allowed): those calls are judged from the recorded calls
instead (support/iam_policies.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from jobs_orchestration.devstack.stack import free_port
from jobs_orchestration_tests.support.iam_policies import (
    CallRecorder,
    as_list,
    resolve,
    statements,
    task_policies,
)
from jobs_orchestration_tests.support.processes import stop_process

ACCOUNT = "123456789012"
"""moto's default account."""
REGION = "us-east-1"
STACK_NAME = "JobsOrchestration"
COMPUTE_LOG_BUCKET = "jobs-orchestration-compute-logs"
VERSIONED_BUCKET_PARAMETER = "DatasetAssetsBucketName"
"""One platform bucket keeps versions, so deletions go through ListObjectVersions and version deletes."""

ADMIN_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
"""The test's own seeding user: puts the objects and messages the code under test then works on."""

STAND_IN_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["s3:*", "sns:Publish", "sns:PublishBatch"], "Resource": "*"}
    ],
}
"""Credentials for the services whose checks moto gets wrong: for S3 it refuses ListObjectsV2 and
ListObjectVersions that s3:ListBucket / s3:ListBucketVersions allow and lets deletes in other buckets
through; for SNS it checks every call against Resource "*", so a policy naming the topic is refused.
Calls to those services are sent with these keys and judged against the component's own policy from
the recorded calls (support/iam_policies.py)."""

SERVICE_PROOF = {
    "sqs": "moto enforces the component's own policy, and every recorded call is judged against it",
    "s3": "every recorded call is judged against the component's policy (moto's S3 checks are wrong both ways)",
    "sns": "every recorded call is judged against the component's policy (moto refuses any named topic)",
}

MOTO_SQS_BATCH_ACTIONS = {
    "sqs:SendMessage": "sqs:SendMessageBatch",
    "sqs:DeleteMessage": "sqs:DeleteMessageBatch",
    "sqs:ChangeMessageVisibility": "sqs:ChangeMessageVisibilityBatch",
}
"""AWS authorises a batch call by its single action; moto asks for an action named after the batch
call. The component's moto user gets the batch names on exactly the queues its policy names."""


def moto_batch_names(policy: dict[str, Any]) -> dict[str, Any] | None:
    """The statements that give moto's batch action names where the policy allows the single action."""
    added = []
    for statement in statements(policy):
        actions = [
            MOTO_SQS_BATCH_ACTIONS[a] for a in as_list(statement["Action"]) if a in MOTO_SQS_BATCH_ACTIONS
        ]
        if actions and statement["Effect"] == "Allow":
            added.append({"Effect": "Allow", "Action": actions, "Resource": statement["Resource"]})
    return {"Version": "2012-10-17", "Statement": added} if added else None


COMPONENT_USERS = {"code": "code-server", "run": "run-task", "webserver": "webserver", "daemon": "daemon"}


@dataclass(frozen=True)
class Credentials:
    user: str
    access_key_id: str
    secret_access_key: str

    def client(self, service: str, endpoint: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
        )

    def environment(self, endpoint: str) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": endpoint,
        }


@dataclass
class Deployment:
    """The stack's resources as the emulator holds them, and who may do what to them."""

    endpoint: str
    parameters: dict[str, str]
    queue_url: str
    dead_letter_queue_url: str
    changelog_topic_arn: str
    alerts_topic_arn: str
    policies: dict[str, dict[str, Any]]
    """component -> its task policy, references resolved."""
    users: dict[str, Credentials] = field(default_factory=dict)

    @property
    def admin(self) -> Credentials:
        return self.users["admin"]

    @property
    def stand_in(self) -> Credentials:
        return self.users["moto-stand-in"]

    def credentials(self, component: str) -> Credentials:
        return self.users[COMPONENT_USERS[component]]

    def credentials_for(self, component: str, service: str) -> Credentials:
        """The keys a component's calls to `service` are sent with (SERVICE_PROOF says why)."""
        return self.credentials(component) if service == "sqs" else self.stand_in

    def client(self, component: str, service: str, recorder: CallRecorder) -> Any:
        """A client acting for the component, every call recorded as the component's."""
        return recorder.attach(
            self.credentials_for(component, service).client(service, self.endpoint), component
        )

    def bucket(self, parameter: str) -> str:
        return self.parameters[parameter]

    @property
    def snapshot_prefix(self) -> str:
        return self.parameters["SnapshotPrefix"]


class IamEmulator:
    def __init__(self, endpoint: str, process: subprocess.Popen) -> None:
        self.endpoint = endpoint
        self.process = process

    def _post(self, path: str, data: bytes = b"") -> None:
        # Not form-encoded: moto reads the raw body of reset-auth.
        request = urllib.request.Request(
            f"{self.endpoint}{path}", data=data, method="POST", headers={"Content-Type": "text/plain"}
        )
        with urllib.request.urlopen(request, timeout=10):
            pass

    def open_to_all(self) -> None:
        """Stop checking credentials (for provisioning) and forget every resource and user."""
        self._post("/moto-api/reset-auth", b"inf")
        self._post("/moto-api/reset")

    def enforce(self) -> None:
        """From the next request on, every call is checked against its caller's IAM policies."""
        self._post("/moto-api/reset-auth", b"0")


@contextmanager
def running_iam_emulator() -> Iterator[IamEmulator]:
    """A moto server process on 127.0.0.1 and a free port, stopped (by its pid) at the end."""
    port = free_port()
    server = Path(sys.executable).parent / "moto_server"
    environment = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "inf"}
    process = subprocess.Popen(
        [str(server), "-H", "127.0.0.1", "-p", str(port)],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start on {endpoint}") from None
                time.sleep(0.2)
        yield IamEmulator(endpoint, process)
    finally:
        stop_process(process)


def provision(emulator: IamEmulator, template: dict[str, Any]) -> Deployment:
    """Create the stack's queues, topics and buckets in an emptied emulator, and one user per
    component holding exactly its task policy; then switch IAM checks on."""
    emulator.open_to_all()
    endpoint = emulator.endpoint
    parameters = {
        name: str(spec["Default"]) for name, spec in template["Parameters"].items() if "Default" in spec
    }
    root = Credentials("root", "provisioning", "provisioning")
    sqs, sns, s3, iam = (root.client(service, endpoint) for service in ("sqs", "sns", "s3", "iam"))

    dead_letter_url = sqs.create_queue(QueueName=parameters["DeadLetterQueueName"])["QueueUrl"]
    dead_letter_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{parameters['DeadLetterQueueName']}"
    queue_url = sqs.create_queue(
        QueueName=parameters["JobQueueName"],
        Attributes={
            "VisibilityTimeout": "120",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": "5"}),
        },
    )["QueueUrl"]
    changelog_arn = sns.create_topic(Name=parameters["ChangelogTopicName"])["TopicArn"]
    alerts_arn = sns.create_topic(Name=parameters["AlertsTopicName"])["TopicArn"]
    buckets = [
        parameters[name]
        for name in (
            "DatasetsBucketName",
            "DatasetAssetsBucketName",
            "TimeseriesBucketName",
            "SnapshotBucketName",
        )
    ]
    for bucket in [*buckets, COMPUTE_LOG_BUCKET]:
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(
        Bucket=parameters[VERSIONED_BUCKET_PARAMETER], VersioningConfiguration={"Status": "Enabled"}
    )

    references: dict[str, Any] = {
        **parameters,
        "AWS::Partition": "aws",
        "AWS::Region": REGION,
        "AWS::AccountId": ACCOUNT,
        "AWS::StackName": STACK_NAME,
        "AWS::URLSuffix": "amazonaws.com",
    }
    attributes: dict[tuple[str, str], Any] = {}
    for logical_id, resource in template["Resources"].items():
        kind = resource["Type"]
        if kind == "AWS::SQS::Queue":
            name = resolve(resource["Properties"]["QueueName"], references, attributes)
            url = queue_url if name == parameters["JobQueueName"] else dead_letter_url
            references[logical_id] = url
            attributes[(logical_id, "Arn")] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
        elif kind == "AWS::SNS::Topic":
            name = resolve(resource["Properties"]["TopicName"], references, attributes)
            references[logical_id] = changelog_arn if name == parameters["ChangelogTopicName"] else alerts_arn
        elif kind == "AWS::S3::Bucket":
            references[logical_id] = COMPUTE_LOG_BUCKET
            attributes[(logical_id, "Arn")] = f"arn:aws:s3:::{COMPUTE_LOG_BUCKET}"
        else:
            # ECS, IAM and log resources exist only as names here: their statements are not exercised.
            references[logical_id] = logical_id
            attributes[(logical_id, "Arn")] = (
                f"arn:aws:iam::{ACCOUNT}:role/{logical_id}"
                if kind == "AWS::IAM::Role"
                else f"arn:aws:{kind.split('::')[1].lower()}:{REGION}:{ACCOUNT}:{logical_id}"
            )
    policies = {
        component: resolve(policy, references, attributes)
        for component, policy in task_policies(template).items()
    }

    deployment = Deployment(
        endpoint, parameters, queue_url, dead_letter_url, changelog_arn, alerts_arn, policies
    )
    documents = {
        **{COMPONENT_USERS[component]: policy for component, policy in policies.items()},
        "admin": ADMIN_POLICY,
        "moto-stand-in": STAND_IN_POLICY,
    }
    for user, document in documents.items():
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName="task", PolicyDocument=json.dumps(document))
        batch_names = moto_batch_names(document) if user in COMPONENT_USERS.values() else None
        if batch_names:
            iam.put_user_policy(
                UserName=user, PolicyName="moto-batch-names", PolicyDocument=json.dumps(batch_names)
            )
        key = iam.create_access_key(UserName=user)["AccessKey"]
        deployment.users[user] = Credentials(user, key["AccessKeyId"], key["SecretAccessKey"])
    emulator.enforce()
    return deployment
