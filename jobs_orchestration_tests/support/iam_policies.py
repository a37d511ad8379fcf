"""IAM policies of the synthesized stack, read and judged without AWS.

- `task_policies`: each component's task policy document, as the template holds it.
- `resolve`: CloudFormation intrinsics (Ref, Fn::GetAtt, Fn::Join, Fn::Sub) replaced by the values of
  a concrete environment (the emulator's queue, topic and bucket ARNs).
- `CallRecorder`: every AWS call a boto3 client makes, recorded through botocore's event hooks.
- `required_permissions`: the IAM actions and resource ARNs (and condition keys) a recorded call needs.
- `evaluate`: IAM's rule for one request against identity policies: an explicit Deny wins, then any
  Allow whose action, resource and conditions match; otherwise denied.
"""

from __future__ import annotations

import fnmatch
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

TASK_POLICY_PREFIXES = {
    "code": "CodeServerTaskPolicy",
    "daemon": "DaemonTaskPolicy",
    "webserver": "WebserverTaskPolicy",
    "run": "RunTaskPolicy",
}
"""Container name -> logical id prefix of its task policy in the template."""


def task_policies(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    found = {}
    for component, prefix in TASK_POLICY_PREFIXES.items():
        matches = [
            resource["Properties"]["PolicyDocument"]
            for logical_id, resource in document["Resources"].items()
            if resource["Type"] == "AWS::IAM::Policy" and logical_id.startswith(prefix)
        ]
        assert len(matches) == 1, f"{len(matches)} policies named {prefix}*"
        found[component] = matches[0]
    return found


def all_policy_documents(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every permissions policy in the template (standalone, managed and inline), by a readable name."""
    found: dict[str, dict[str, Any]] = {}
    for logical_id, resource in document["Resources"].items():
        properties = resource.get("Properties", {})
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            found[logical_id] = properties["PolicyDocument"]
        for index, inline in enumerate(
            properties.get("Policies", []) if resource["Type"] == "AWS::IAM::Role" else []
        ):
            found[f"{logical_id}.Policies[{index}]"] = inline["PolicyDocument"]
    return found


def statements(policy: Mapping[str, Any]) -> list[dict[str, Any]]:
    found = policy["Statement"]
    return [found] if isinstance(found, dict) else list(found)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# -- intrinsics ---------------------------------------------------------------------------------------


def resolve(value: Any, references: Mapping[str, Any], attributes: Mapping[tuple[str, str], Any]) -> Any:
    """The value with every Ref / Fn::GetAtt / Fn::Join / Fn::Sub replaced; an unknown name raises."""
    if isinstance(value, list):
        return [resolve(item, references, attributes) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        [(key, argument)] = value.items()
        if key == "Ref":
            if argument not in references:
                raise KeyError(f"no value for Ref {argument}")
            return references[argument]
        if key == "Fn::GetAtt":
            name, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            if (name, attribute) not in attributes:
                raise KeyError(f"no value for Fn::GetAtt {name}.{attribute}")
            return attributes[(name, attribute)]
        if key == "Fn::Join":
            separator, items = argument
            return separator.join(str(resolve(item, references, attributes)) for item in items)
        if key == "Fn::Sub":
            text = argument if isinstance(argument, str) else argument[0]
            return re.sub(r"\$\{([^}]+)\}", lambda match: str(references[match.group(1)]), text)
    return {key: resolve(item, references, attributes) for key, item in value.items()}


# -- recording calls ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    service: str
    operation: str
    params: dict[str, Any]
    region: str
    principal: str
    """Which credentials made the call (the test's name for them)."""


@dataclass
class CallRecorder:
    calls: list[Call] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def attach(self, client: Any, principal: str) -> Any:
        """Record every call `client` makes from now on, as made by `principal`; returns the client."""
        service = client.meta.service_model.service_name
        region = client.meta.region_name

        def record(params: dict[str, Any], model: Any, **_: Any) -> None:
            with self._lock:
                self.calls.append(Call(service, model.name, dict(params), region, principal))

        # before-parameter-build sees the parameters as the caller gave them (before serialization),
        # once per API call, paginated pages and retries of a page included.
        client.meta.events.register(f"before-parameter-build.{service}", record)
        return client

    def attach_session(self, session: Any, principal: str) -> None:
        """Record the calls of every client `session` (a boto3 Session) creates from now on, for code
        that makes its own clients."""
        region = session.region_name

        def record(params: dict[str, Any], model: Any, **_: Any) -> None:
            with self._lock:
                self.calls.append(
                    Call(model.service_model.service_name, model.name, dict(params), region, principal)
                )

        session.events.register("before-parameter-build", record)

    def by(self, principal: str) -> list[Call]:
        return [call for call in self.calls if call.principal == principal]


# -- what a call needs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Permission:
    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()
    """Condition keys the request carries (s3:prefix, ...)."""


SQS_SINGLE_ACTIONS = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}
S3_OBJECT_ACTIONS = {
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
}
S3_BUCKET_ACTIONS = {
    "ListObjects": "s3:ListBucket",
    "ListObjectsV2": "s3:ListBucket",
    "ListObjectVersions": "s3:ListBucketVersions",
    "GetBucketVersioning": "s3:GetBucketVersioning",
}


def sqs_queue_arn(queue_url: str, region: str) -> str:
    """The queue's ARN from its URL (https://sqs.<region>.amazonaws.com/<account>/<name>, or an emulator's)."""
    account, name = urlparse(queue_url).path.strip("/").split("/")[-2:]
    return f"arn:aws:sqs:{region}:{account}:{name}"


def required_permissions(call: Call) -> list[Permission]:
    """What IAM checks for the call; an operation not described here raises, so a new kind of call
    the code starts making cannot pass unjudged."""
    params = call.params
    if call.service == "sqs":
        action = SQS_SINGLE_ACTIONS.get(call.operation, call.operation)
        return [Permission(f"sqs:{action}", sqs_queue_arn(params["QueueUrl"], call.region))]
    if call.service == "sns" and call.operation in ("Publish", "PublishBatch"):
        return [Permission("sns:Publish", params["TopicArn"])]
    if call.service == "s3":
        bucket = params["Bucket"]
        if call.operation in S3_BUCKET_ACTIONS:
            context = (("s3:prefix", params.get("Prefix", "")),)
            return [Permission(S3_BUCKET_ACTIONS[call.operation], f"arn:aws:s3:::{bucket}", context)]
        if call.operation in S3_OBJECT_ACTIONS:
            return [Permission(S3_OBJECT_ACTIONS[call.operation], f"arn:aws:s3:::{bucket}/{params['Key']}")]
        if call.operation in ("DeleteObjects", "DeleteObject"):
            objects = params["Delete"]["Objects"] if call.operation == "DeleteObjects" else [params]
            return [
                Permission(
                    "s3:DeleteObjectVersion" if item.get("VersionId") else "s3:DeleteObject",
                    f"arn:aws:s3:::{bucket}/{item['Key']}",
                )
                for item in objects
            ]
    raise NotImplementedError(
        f"no IAM mapping for {call.service}:{call.operation}; add it to required_permissions"
    )


# -- evaluation ----------------------------------------------------------------------------------------


def _glob(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    """IAM wildcards: * any run of characters (slashes too), ? one character."""
    expression = fnmatch.translate(pattern.replace("[", "[[]"))
    return re.match(expression, value, 0 if case_sensitive else re.IGNORECASE) is not None


CONDITION_OPERATORS = {
    "StringEquals": lambda wanted, actual: actual == wanted,
    "StringLike": lambda wanted, actual: _glob(wanted, actual),
    "ArnEquals": lambda wanted, actual: actual == wanted,
    "ArnLike": lambda wanted, actual: _glob(wanted, actual),
}


def _conditions_hold(conditions: Mapping[str, Mapping[str, Any]], context: Mapping[str, str]) -> bool:
    for operator, tests in conditions.items():
        if operator not in CONDITION_OPERATORS:
            raise NotImplementedError(f"condition operator {operator} is not evaluated here")
        for key, wanted in tests.items():
            if key not in context:
                return False
            if not any(CONDITION_OPERATORS[operator](value, context[key]) for value in as_list(wanted)):
                return False
    return True


def statement_matches(statement: Mapping[str, Any], permission: Permission) -> bool:
    actions_match = any(
        _glob(action, permission.action, case_sensitive=False)
        for action in as_list(statement.get("Action", []))
    )
    resources_match = any(
        _glob(resource, permission.resource) for resource in as_list(statement.get("Resource", []))
    )
    return (
        actions_match
        and resources_match
        and _conditions_hold(statement.get("Condition", {}), dict(permission.context))
    )


def evaluate(policies: Iterable[Mapping[str, Any]], permission: Permission) -> bool:
    matching = [
        statement
        for policy in policies
        for statement in statements(policy)
        if statement_matches(statement, permission)
    ]
    if any(statement["Effect"] == "Deny" for statement in matching):
        return False
    return any(statement["Effect"] == "Allow" for statement in matching)


def granting_statement(policy: Mapping[str, Any], permission: Permission) -> str | None:
    """The Sid of the Allow statement that grants the permission."""
    for statement in statements(policy):
        if statement["Effect"] == "Allow" and statement_matches(statement, permission):
            return statement.get("Sid", "?")
    return None
