"""Least privilege in the template: no wildcard action anywhere, Resource "*" only where AWS requires
it (each case listed with its reason), one task role per component holding exactly its own actions,
and execution roles that can only pull the image, write their logs and read their own secrets."""

from __future__ import annotations

from pathlib import Path

from deploy.stack.iam import WILDCARD_RESOURCE_EXCEPTIONS
from jobs_orchestration_tests.support.cdk_template import one_resource, resources_of_type
from jobs_orchestration_tests.support.iam_policies import (
    all_policy_documents,
    as_list,
    statements,
    task_policies,
)

REPOSITORY = Path(__file__).resolve().parents[3]

TASK_ACTIONS = {
    "code": {
        "sqs:ReceiveMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:SendMessage",
        "sns:Publish",
        "s3:PutObject",
    },
    "daemon": {
        "ecs:RunTask",
        "ecs:TagResource",
        "ecs:DescribeTasks",
        "ecs:StopTask",
        "ecs:DescribeTaskDefinition",
        "ec2:DescribeNetworkInterfaces",
        "iam:PassRole",
        "logs:GetLogEvents",
        "s3:PutObject",
    },
    "webserver": {
        "ecs:DescribeTaskDefinition",
        "ecs:DescribeTasks",
        "ecs:StopTask",
        "s3:GetObject",
        "s3:ListBucket",
    },
    "run": {
        "s3:ListBucket",
        "s3:ListBucketVersions",
        "s3:GetBucketVersioning",
        "s3:DeleteObject",
        "s3:DeleteObjectVersion",
        "sns:Publish",
        "sqs:SendMessage",
        "sqs:ReceiveMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "s3:PutObject",
        "s3:AbortMultipartUpload",
    },
}
"""What each component may do at all; a change here is a change of its permissions, made on purpose."""

EXECUTION_ACTIONS = {
    "ecr:BatchCheckLayerAvailability",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchGetImage",
    "ecr:GetAuthorizationToken",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "secretsmanager:GetSecretValue",
    "secretsmanager:DescribeSecret",
}


def test_no_policy_grants_a_wildcard_action(synthesized):
    for name, policy in all_policy_documents(synthesized.document).items():
        for statement in statements(policy):
            assert "NotAction" not in statement and "NotResource" not in statement, name
            for action in as_list(statement["Action"]):
                assert "*" not in action and "?" not in action, f"{name}: {action}"


def test_resource_star_only_where_aws_requires_it(synthesized):
    used = set()
    for name, policy in all_policy_documents(synthesized.document).items():
        for statement in statements(policy):
            if "*" in as_list(statement["Resource"]):
                assert as_list(statement["Resource"]) == ["*"], name
                for action in as_list(statement["Action"]):
                    assert action in WILDCARD_RESOURCE_EXCEPTIONS, f"{name}: {action} on Resource '*'"
                    used.add(action)
    assert used == set(WILDCARD_RESOURCE_EXCEPTIONS), "an exception nobody needs any more should go"


def test_the_readme_lists_every_wildcard_resource_exception():
    readme = (REPOSITORY / "README.md").read_text()
    for action in WILDCARD_RESOURCE_EXCEPTIONS:
        assert f"`{action}`" in readme, f"README does not explain why {action} is allowed on '*'"


def test_each_component_has_exactly_its_own_actions(synthesized):
    for component, policy in task_policies(synthesized.document).items():
        granted = {action for statement in statements(policy) for action in as_list(statement["Action"])}
        assert all(statement["Effect"] == "Allow" for statement in statements(policy))
        assert granted == TASK_ACTIONS[component], component


def test_each_task_role_holds_only_its_policy(synthesized):
    document = synthesized.document
    attached: dict[str, list[str]] = {}
    for logical_id, policy in resources_of_type(document, "AWS::IAM::Policy").items():
        for role in policy["Properties"]["Roles"]:
            attached.setdefault(role["Ref"], []).append(logical_id)
    prefixes = {"code": "CodeServer", "daemon": "Daemon", "webserver": "Webserver", "run": "Run"}
    for component, prefix in prefixes.items():
        role, properties = one_resource(document, "AWS::IAM::Role", f"{prefix}TaskRole")
        assert (
            "ManagedPolicyArns" not in properties["Properties"] and "Policies" not in properties["Properties"]
        )
        [policy] = attached[role]
        assert policy.startswith(f"{prefix}TaskPolicy"), (component, policy)
        execution, execution_properties = one_resource(document, "AWS::IAM::Role", f"{prefix}ExecutionRole")
        assert "ManagedPolicyArns" not in execution_properties["Properties"]
        [execution_policy] = attached[execution]
        actions = {
            action
            for statement in statements(
                document["Resources"][execution_policy]["Properties"]["PolicyDocument"]
            )
            for action in as_list(statement["Action"])
        }
        assert actions <= EXECUTION_ACTIONS, (component, actions - EXECUTION_ACTIONS)


def test_execution_roles_read_only_the_secrets_their_containers_use(synthesized):
    document = synthesized.document
    database = one_resource(document, "AWS::SecretsManager::SecretTargetAttachment", "DagsterDatabase")[0]
    jobs_url = one_resource(document, "AWS::SecretsManager::Secret", "JobsDatabaseUrlSecret")[0]
    parser_url = one_resource(document, "AWS::SecretsManager::Secret", "EmailParserDatabaseUrlSecret")[0]
    expected = {
        "CodeServer": {database, jobs_url, parser_url},
        "Run": {database, jobs_url, parser_url},
        "Webserver": {database},
        "Daemon": {database},
    }
    for prefix, secrets in expected.items():
        _, policy = one_resource(document, "AWS::IAM::Policy", f"{prefix}ExecutionRoleDefaultPolicy")
        read = {
            statement["Resource"]["Ref"]
            for statement in statements(policy["Properties"]["PolicyDocument"])
            if "secretsmanager:GetSecretValue" in as_list(statement["Action"])
        }
        assert read == secrets, prefix


def test_only_this_accounts_ecs_tasks_take_on_the_roles(synthesized):
    for logical_id, role in resources_of_type(synthesized.document, "AWS::IAM::Role").items():
        [statement] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Action"] == "sts:AssumeRole", logical_id
        assert statement["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}, logical_id
        assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}


def test_the_daemon_launches_only_the_run_task_in_its_cluster_and_passes_only_its_roles(synthesized):
    document = synthesized.document
    cluster = one_resource(document, "AWS::ECS::Cluster", "Cluster")[0]
    policy = task_policies(document)["daemon"]
    by_sid = {statement["Sid"]: statement for statement in statements(policy)}
    launch = by_sid["LaunchRunTasks"]
    assert launch["Condition"] == {"ArnEquals": {"ecs:cluster": {"Fn::GetAtt": [cluster, "Arn"]}}}
    assert launch["Resource"]["Fn::Join"][1][-2:] == [{"Ref": "AWS::StackName"}, "-run:*"]
    passing = by_sid["PassRunTaskRoles"]
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    run_role = one_resource(document, "AWS::IAM::Role", "RunTaskRole")[0]
    run_execution = one_resource(document, "AWS::IAM::Role", "RunExecutionRole")[0]
    assert passing["Resource"] == [{"Fn::GetAtt": [run_role, "Arn"]}, {"Fn::GetAtt": [run_execution, "Arn"]}]
    for sid in ("TagRunTasksAtLaunch", "WatchAndStopTasks"):
        assert by_sid[sid]["Resource"]["Fn::Join"][1][-3:] == [":task/", {"Ref": cluster}, "/*"]
