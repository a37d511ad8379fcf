"""The synthesized stack: every part, how the parts are wired, and what each container is told."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match

from deploy.stack import contract
from jobs_orchestration import settings
from jobs_orchestration_tests.support.cdk_template import one_resource, resources_of_type

TASK_DEFINITIONS = {
    contract.WEBSERVER_CONTAINER: "WebserverTaskDefinition",
    contract.DAEMON_CONTAINER: "DaemonTaskDefinition",
    contract.CODE_SERVER_CONTAINER: "CodeServerTaskDefinition",
    contract.RUN_CONTAINER: "RunTaskDefinition",
}
LOADS_THE_CODE = (contract.CODE_SERVER_CONTAINER, contract.RUN_CONTAINER)


def container(document: dict[str, Any], name: str) -> dict[str, Any]:
    _, definition = one_resource(document, "AWS::ECS::TaskDefinition", TASK_DEFINITIONS[name])
    [found] = definition["Properties"]["ContainerDefinitions"]
    assert found["Name"] == name
    return found


def environment(document: dict[str, Any], name: str) -> dict[str, Any]:
    return {entry["Name"]: entry["Value"] for entry in container(document, name)["Environment"]}


def secrets(document: dict[str, Any], name: str) -> dict[str, Any]:
    return {entry["Name"]: entry["ValueFrom"] for entry in container(document, name).get("Secrets", [])}


def logical_id(document: dict[str, Any], resource_type: str, prefix: str) -> str:
    return one_resource(document, resource_type, prefix)[0]


def test_every_part_is_there(synthesized):
    template = synthesized.template
    for resource_type, count in {
        "AWS::EC2::VPC": 1,
        "AWS::RDS::DBInstance": 1,
        "AWS::ECS::Cluster": 1,
        "AWS::ECS::Service": 3,
        "AWS::ECS::TaskDefinition": 4,
        "AWS::ServiceDiscovery::PrivateDnsNamespace": 1,
        "AWS::ServiceDiscovery::Service": 1,
        "AWS::SQS::Queue": 2,
        "AWS::SNS::Topic": 2,
        "AWS::S3::Bucket": 1,
        "AWS::SecretsManager::Secret": 3,
        "AWS::Logs::LogGroup": 4,
        "AWS::ElasticLoadBalancingV2::LoadBalancer": 1,
        "AWS::ElasticLoadBalancingV2::Listener": 2,
        "AWS::ElasticLoadBalancingV2::TargetGroup": 1,
        "AWS::CloudWatch::Alarm": 1,
        "AWS::EC2::NatGateway": 1,
        "AWS::EC2::VPCEndpoint": 1,
    }.items():
        template.resource_count_is(resource_type, count)


def test_synthesis_needs_no_custom_resources_or_assets(synthesized):
    # Nothing is uploaded or run at deploy time besides CloudFormation's own resources: no Lambda,
    # no asset bucket, no Docker build during synthesis.
    types = {resource["Type"] for resource in synthesized.document["Resources"].values()}
    assert not {kind for kind in types if kind.startswith("Custom::") or kind == "AWS::Lambda::Function"}


def test_the_services_run_the_contract_commands(synthesized):
    document = synthesized.document
    assert container(document, contract.CODE_SERVER_CONTAINER)["Command"] == contract.CODE_SERVER_COMMAND
    assert container(document, contract.WEBSERVER_CONTAINER)["Command"] == contract.WEBSERVER_COMMAND
    assert container(document, contract.DAEMON_CONTAINER)["Command"] == contract.DAEMON_COMMAND
    # The EcsRunLauncher (and a migration) give the run container its command.
    assert "Command" not in container(document, contract.RUN_CONTAINER)
    for service_prefix, definition_prefix in (
        ("WebserverService", "WebserverTaskDefinition"),
        ("DaemonService", "DaemonTaskDefinition"),
        ("CodeServerService", "CodeServerTaskDefinition"),
    ):
        _, service = one_resource(document, "AWS::ECS::Service", service_prefix)
        properties = service["Properties"]
        assert properties["TaskDefinition"] == {
            "Ref": logical_id(document, "AWS::ECS::TaskDefinition", definition_prefix)
        }
        assert properties["LaunchType"] == "FARGATE"
        assert properties["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == "DISABLED"
        assert properties["DeploymentConfiguration"]["DeploymentCircuitBreaker"] == {
            "Enable": True,
            "Rollback": True,
        }


def test_every_container_runs_the_one_image_with_its_role_and_logs(synthesized):
    document = synthesized.document
    images = set()
    for name in TASK_DEFINITIONS:
        found = container(document, name)
        images.add(json.dumps(found["Image"], sort_keys=True))
        assert environment(document, name)[contract.ROLE_VARIABLE] == contract.ROLES[name]
        options = found["LogConfiguration"]["Options"]
        assert (
            found["LogConfiguration"]["LogDriver"] == "awslogs" and options["awslogs-stream-prefix"] == name
        )
        assert options["awslogs-group"]["Ref"].startswith(
            {"code": "CodeServer", "run": "Run", "webserver": "Webserver", "daemon": "Daemon"}[name]
            + "LogGroup"
        )
    [image] = images
    assert "ImageRepositoryName" in image and "ImageTag" in image
    for name in (contract.WEBSERVER_CONTAINER, contract.DAEMON_CONTAINER, contract.CODE_SERVER_CONTAINER):
        assert container(document, name)["HealthCheck"]["Command"] == ["CMD", "/app/deploy/healthcheck.sh"]


def test_the_code_server_is_found_by_name_on_port_4000(synthesized):
    document = synthesized.document
    synthesized.template.has_resource_properties(
        "AWS::ServiceDiscovery::PrivateDnsNamespace", {"Name": contract.SERVICE_DISCOVERY_NAMESPACE}
    )
    _, discovery = one_resource(document, "AWS::ServiceDiscovery::Service", "CodeServerService")
    assert discovery["Properties"]["Name"] == contract.CODE_SERVER_DISCOVERY_NAME
    assert discovery["Properties"]["NamespaceId"]["Fn::GetAtt"][0].startswith("Namespace")
    _, service = one_resource(document, "AWS::ECS::Service", "CodeServerService")
    [registry] = service["Properties"]["ServiceRegistries"]
    assert (
        registry["RegistryArn"]["Fn::GetAtt"][0]
        == one_resource(document, "AWS::ServiceDiscovery::Service", "CodeServerService")[0]
    )
    assert container(document, contract.CODE_SERVER_CONTAINER)["PortMappings"][0]["ContainerPort"] == 4000
    for name in (contract.WEBSERVER_CONTAINER, contract.DAEMON_CONTAINER):
        assert (
            environment(document, name)[contract.DAGSTER_CODE_SERVER_HOST] == "code.jobs-orchestration.local"
        )


def test_the_instance_variables_point_at_the_stacks_resources(synthesized):
    document = synthesized.document
    database = logical_id(document, "AWS::RDS::DBInstance", "DagsterDatabase")
    attachment = logical_id(document, "AWS::SecretsManager::SecretTargetAttachment", "DagsterDatabase")
    cluster = logical_id(document, "AWS::ECS::Cluster", "Cluster")
    run_role = logical_id(document, "AWS::IAM::Role", "RunTaskRole")
    bucket = logical_id(document, "AWS::S3::Bucket", "ComputeLogBucket")
    _, run_definition = one_resource(document, "AWS::ECS::TaskDefinition", "RunTaskDefinition")
    family = run_definition["Properties"]["Family"]
    for name in TASK_DEFINITIONS:
        variables = environment(document, name)
        assert variables[contract.DAGSTER_PG_HOST] == {"Fn::GetAtt": [database, "Endpoint.Address"]}
        assert variables[contract.DAGSTER_PG_PORT] == {"Fn::GetAtt": [database, "Endpoint.Port"]}
        assert variables[contract.DAGSTER_PG_DB] == contract.DAGSTER_DATABASE_NAME
        assert variables[contract.DAGSTER_COMPUTE_LOG_BUCKET] == {"Ref": bucket}
        assert variables[contract.DAGSTER_COMPUTE_LOG_PREFIX] == contract.COMPUTE_LOG_PREFIX
        assert variables[contract.DAGSTER_RUN_TASK_DEFINITION] == family
        assert variables[contract.DAGSTER_RUN_TASK_ROLE_ARN] == {"Fn::GetAtt": [run_role, "Arn"]}
        assert variables[contract.DAGSTER_ECS_CLUSTER] == {"Fn::GetAtt": [cluster, "Arn"]}
        assert variables["AWS_REGION"] == {"Ref": "AWS::Region"}
        assert variables["PGSSLMODE"] == "require"
        hidden = secrets(document, name)
        for variable, field in (
            (contract.DAGSTER_PG_USERNAME, "username"),
            (contract.DAGSTER_PG_PASSWORD, "password"),
        ):
            assert hidden[variable] == {"Fn::Join": ["", [{"Ref": attachment}, f":{field}::"]]}
            assert variable not in variables
    assert family == {"Fn::Join": ["", [{"Ref": "AWS::StackName"}, "-run"]]}


def test_the_projects_variables_point_at_the_stacks_resources(synthesized):
    document = synthesized.document
    queue = logical_id(document, "AWS::SQS::Queue", "JobQueue")
    dead_letters = logical_id(document, "AWS::SQS::Queue", "DeadLetterQueue")
    changelog = logical_id(document, "AWS::SNS::Topic", "ChangelogTopic")
    alerts = logical_id(document, "AWS::SNS::Topic", "AlertsTopic")
    jobs_url = logical_id(document, "AWS::SecretsManager::Secret", "JobsDatabaseUrlSecret")
    parser_url = logical_id(document, "AWS::SecretsManager::Secret", "EmailParserDatabaseUrlSecret")
    for name in LOADS_THE_CODE:
        variables = environment(document, name)
        assert variables[settings.JOBS_QUEUE_URL] == {"Ref": queue}
        assert variables[settings.JOBS_DEAD_LETTER_QUEUE_URL] == {"Ref": dead_letters}
        assert variables[settings.CHANGELOG_TOPIC_ARN] == {"Ref": changelog}
        assert variables[settings.ALERTS_TOPIC_ARN] == {"Ref": alerts}
        assert variables[settings.TIMESERIES_BUCKET] == {"Ref": "TimeseriesBucketName"}
        assert variables[settings.SNAPSHOT_STORAGE_URL] == {
            "Fn::Join": ["", ["s3://", {"Ref": "SnapshotBucketName"}, "/", {"Ref": "SnapshotPrefix"}]]
        }
        for variable, parameter in (
            (settings.SNAPSHOT_RETENTION_DAYS, "SnapshotRetentionDays"),
            (settings.SNAPSHOT_CLEANUP_TIMEZONE, "SnapshotCleanupTimezone"),
            (settings.JOBS_INTAKE_BATCH_SIZE, "IntakeBatchSize"),
            (settings.JOBS_INTAKE_CHANGELOG_BATCH_SIZE, "IntakeChangelogBatchSize"),
            (settings.JOBS_INTAKE_INTERVAL_SECONDS, "IntakeIntervalSeconds"),
        ):
            assert variables[variable] == {"Ref": parameter}
        hidden = secrets(document, name)
        assert hidden[settings.JOBS_DATABASE_URL] == {"Ref": jobs_url}
        assert hidden[settings.EMAIL_PARSER_DATABASE_URL] == {"Ref": parser_url}
        assert settings.JOBS_DATABASE_URL not in variables
    for name in (contract.WEBSERVER_CONTAINER, contract.DAEMON_CONTAINER):
        # They never load the project's code, so they get none of its settings or database URLs.
        assert settings.JOBS_DATABASE_URL not in secrets(document, name)
        assert settings.JOBS_QUEUE_URL not in environment(document, name)


def test_the_code_reads_nothing_the_stack_leaves_unset(synthesized):
    read_by_the_code = set(settings.VARIABLES)
    optional = {settings.AWS_ENDPOINT_URL, settings.AZURE_STORAGE_CONNECTION_STRING}
    for name in LOADS_THE_CODE:
        given = set(environment(synthesized.document, name)) | set(secrets(synthesized.document, name))
        assert read_by_the_code - optional <= given, read_by_the_code - optional - given


def test_queues_redrive_into_the_dead_letter_queue(synthesized):
    document = synthesized.document
    dead_letters = logical_id(document, "AWS::SQS::Queue", "DeadLetterQueue")
    _, queue = one_resource(document, "AWS::SQS::Queue", "JobQueue")
    properties = queue["Properties"]
    assert properties["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dead_letters, "Arn"]},
        "maxReceiveCount": 5,
    }
    assert properties["QueueName"] == {"Ref": "JobQueueName"} and properties["VisibilityTimeout"] == 120
    for _, found in resources_of_type(document, "AWS::SQS::Queue").items():
        assert found["Properties"]["SqsManagedSseEnabled"] is True
    synthesized.template.has_resource_properties(
        "AWS::SNS::Topic", {"TopicName": {"Ref": "ChangelogTopicName"}}
    )
    synthesized.template.has_resource_properties("AWS::SNS::Topic", {"TopicName": {"Ref": "AlertsTopicName"}})
    _, alarm = one_resource(document, "AWS::CloudWatch::Alarm", "DeadLettersAlarm")
    assert alarm["Properties"]["AlarmActions"] == [
        {"Ref": logical_id(document, "AWS::SNS::Topic", "AlertsTopic")}
    ]


def test_the_database_is_encrypted_private_and_kept(synthesized):
    document = synthesized.document
    _, database = one_resource(document, "AWS::RDS::DBInstance", "DagsterDatabase")
    properties = database["Properties"]
    assert properties["Engine"] == "postgres"
    assert properties["StorageEncrypted"] is True
    assert properties["PubliclyAccessible"] is False
    assert properties["DeletionProtection"] is True
    assert database["DeletionPolicy"] == "Snapshot"
    assert properties["DBName"] == contract.DAGSTER_DATABASE_NAME
    # The password is generated into Secrets Manager and resolved by CloudFormation, never written here.
    assert "{{resolve:secretsmanager:" in json.dumps(properties["MasterUserPassword"])
    _, subnet_group = one_resource(document, "AWS::RDS::DBSubnetGroup", "DagsterDatabase")
    subnets = {reference["Ref"] for reference in subnet_group["Properties"]["SubnetIds"]}
    assert subnets and all("private" in subnet for subnet in subnets)
    assert properties["VPCSecurityGroups"] == [
        {"Fn::GetAtt": [logical_id(document, "AWS::EC2::SecurityGroup", "DatabaseSecurityGroup"), "GroupId"]}
    ]


def test_only_the_stacks_own_compute_log_bucket_is_created(synthesized):
    # The platform's and the Email Parser's buckets are referenced by name, never created or deleted.
    document = synthesized.document
    [(name, bucket)] = resources_of_type(document, "AWS::S3::Bucket").items()
    assert name.startswith("ComputeLogBucket")
    assert bucket["DeletionPolicy"] == "Retain"
    properties = bucket["Properties"]
    assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ] == {"SSEAlgorithm": "AES256"}
    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    [rule] = properties["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == {"Ref": "ComputeLogExpirationDays"} and rule["Status"] == "Enabled"


def test_database_url_secrets_are_placeholders_for_the_operator(synthesized):
    for prefix in ("JobsDatabaseUrlSecret", "EmailParserDatabaseUrlSecret"):
        _, secret = one_resource(synthesized.document, "AWS::SecretsManager::Secret", prefix)
        properties = secret["Properties"]
        assert "GenerateSecretString" in properties and "SecretString" not in properties
        assert "put-secret-value" in properties["Description"]
        assert secret["DeletionPolicy"] == "Retain"


def test_logs_are_kept_for_the_retention_period(synthesized):
    for _, group in resources_of_type(synthesized.document, "AWS::Logs::LogGroup").items():
        assert group["Properties"]["RetentionInDays"] == 30


def test_the_load_balancer_signs_people_in_before_forwarding(synthesized):
    document = synthesized.document
    _, balancer = one_resource(document, "AWS::ElasticLoadBalancingV2::LoadBalancer", "LoadBalancer")
    assert balancer["Properties"]["Scheme"] == "internet-facing"
    attributes = {entry["Key"]: entry["Value"] for entry in balancer["Properties"]["LoadBalancerAttributes"]}
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    _, https = one_resource(document, "AWS::ElasticLoadBalancingV2::Listener", "LoadBalancerHttpsListener")
    properties = https["Properties"]
    assert (properties["Port"], properties["Protocol"]) == (443, "HTTPS")
    assert properties["Certificates"] == [{"CertificateArn": {"Ref": "CertificateArn"}}]
    first, then = sorted(properties["DefaultActions"], key=lambda action: action["Order"])
    assert first["Type"] == "authenticate-oidc"
    oidc = first["AuthenticateOidcConfig"]
    for field, parameter in (
        ("Issuer", "OidcIssuer"),
        ("AuthorizationEndpoint", "OidcAuthorizationEndpoint"),
        ("TokenEndpoint", "OidcTokenEndpoint"),
        ("UserInfoEndpoint", "OidcUserInfoEndpoint"),
        ("ClientId", "OidcClientId"),
    ):
        assert oidc[field] == {"Ref": parameter}
    assert oidc["ClientSecret"] == {
        "Fn::Join": ["", ["{{resolve:secretsmanager:", {"Ref": "OidcClientSecretName"}, ":SecretString:::}}"]]
    }
    assert oidc["OnUnauthenticatedRequest"] == "authenticate"
    assert then["Type"] == "forward"
    target_group = logical_id(document, "AWS::ElasticLoadBalancingV2::TargetGroup", "WebserverTargetGroup")
    assert then["TargetGroupArn"] == {"Ref": target_group}
    _, http = one_resource(document, "AWS::ElasticLoadBalancingV2::Listener", "LoadBalancerHttpListener")
    [redirect] = http["Properties"]["DefaultActions"]
    assert redirect["Type"] == "redirect"
    assert redirect["RedirectConfig"] == {"Port": "443", "Protocol": "HTTPS", "StatusCode": "HTTP_301"}


def test_the_webserver_is_the_target_and_only_the_load_balancer_reaches_it(synthesized):
    document = synthesized.document
    target_group = logical_id(document, "AWS::ElasticLoadBalancingV2::TargetGroup", "WebserverTargetGroup")
    _, group = one_resource(document, "AWS::ElasticLoadBalancingV2::TargetGroup", "WebserverTargetGroup")
    assert (
        group["Properties"]["HealthCheckPath"] == "/server_info" and group["Properties"]["TargetType"] == "ip"
    )
    _, service = one_resource(document, "AWS::ECS::Service", "WebserverService")
    [attachment] = service["Properties"]["LoadBalancers"]
    assert attachment == {
        "ContainerName": contract.WEBSERVER_CONTAINER,
        "ContainerPort": contract.WEBSERVER_PORT,
        "TargetGroupArn": {"Ref": target_group},
    }
    assert ingress_sources(document, "WebserverSecurityGroup") == {
        ("LoadBalancerSecurityGroup", contract.WEBSERVER_PORT)
    }
    assert ingress_sources(document, "CodeServerSecurityGroup") == {
        ("WebserverSecurityGroup", contract.CODE_SERVER_PORT),
        ("DaemonSecurityGroup", contract.CODE_SERVER_PORT),
    }
    assert ingress_sources(document, "DatabaseSecurityGroup") == {
        ("WebserverSecurityGroup", 5432),
        ("DaemonSecurityGroup", 5432),
        ("CodeServerSecurityGroup", 5432),
    }
    assert ingress_sources(document, "DaemonSecurityGroup") == set()
    _, balancer_group = one_resource(document, "AWS::EC2::SecurityGroup", "LoadBalancerSecurityGroup")
    assert sorted(
        (rule["CidrIp"]["Ref"], rule["FromPort"])
        for rule in balancer_group["Properties"]["SecurityGroupIngress"]
    ) == [("AllowedIngressCidr", 80), ("AllowedIngressCidr", 443)]
    for prefix in ("WebserverService", "DaemonService", "CodeServerService"):
        _, found = one_resource(document, "AWS::ECS::Service", prefix)
        [group_id] = found["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]["SecurityGroups"]
        expected = {
            "WebserverService": "Webserver",
            "DaemonService": "Daemon",
            "CodeServerService": "CodeServer",
        }[prefix]
        assert group_id["Fn::GetAtt"][0].startswith(f"{expected}SecurityGroup")


def ingress_sources(document: dict[str, Any], group_prefix: str) -> set[tuple[str, int]]:
    """(source security group's logical id prefix, port) of every ingress rule of a group."""
    group = logical_id(document, "AWS::EC2::SecurityGroup", group_prefix)
    rules = set()
    for rule in resources_of_type(document, "AWS::EC2::SecurityGroupIngress").values():
        properties = rule["Properties"]
        if properties["GroupId"] == {"Fn::GetAtt": [group, "GroupId"]}:
            source = properties["SourceSecurityGroupId"]["Fn::GetAtt"][0]
            prefix = source.removesuffix(source[len(source.rstrip("0123456789ABCDEF")) :])
            rules.add((prefix, properties["FromPort"]))
            assert properties["FromPort"] == properties["ToPort"]
    _, found = one_resource(document, "AWS::EC2::SecurityGroup", group_prefix)
    assert not found["Properties"].get("SecurityGroupIngress"), "no inline ingress from addresses"
    return rules


def test_only_one_daemon_ever_runs(synthesized):
    _, daemon = one_resource(synthesized.document, "AWS::ECS::Service", "DaemonService")
    properties = daemon["Properties"]
    assert properties["DesiredCount"] == {"Ref": "DaemonCount"}
    assert properties["DeploymentConfiguration"]["MinimumHealthyPercent"] == 0
    assert properties["DeploymentConfiguration"]["MaximumPercent"] == 100
    assert synthesized.document["Parameters"]["DaemonCount"]["MaxValue"] == 1


def test_s3_traffic_of_the_private_subnets_bypasses_the_nat_gateway(synthesized):
    document = synthesized.document
    _, endpoint = one_resource(document, "AWS::EC2::VPCEndpoint", "VpcS3")
    properties = endpoint["Properties"]
    assert properties["VpcEndpointType"] == "Gateway"
    assert "s3" in json.dumps(properties["ServiceName"])
    tables = {table["Ref"] for table in properties["RouteTableIds"]}
    private = {name for name in resources_of_type(document, "AWS::EC2::RouteTable") if "private" in name}
    assert private and private <= tables


def test_an_existing_vpc_is_used_as_it_is(synthesized):
    document = synthesized.existing_vpc_document
    types = {resource["Type"] for resource in document["Resources"].values()}
    assert not types & {
        "AWS::EC2::VPC",
        "AWS::EC2::Subnet",
        "AWS::EC2::NatGateway",
        "AWS::EC2::InternetGateway",
    }
    _, group = one_resource(document, "AWS::EC2::SecurityGroup", "WebserverSecurityGroup")
    assert group["Properties"]["VpcId"] == "vpc-0123456789abcdef0"
    _, subnet_group = one_resource(document, "AWS::RDS::DBSubnetGroup", "DagsterDatabase")
    assert subnet_group["Properties"]["SubnetIds"] == ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2"]
    _, balancer = one_resource(document, "AWS::ElasticLoadBalancingV2::LoadBalancer", "LoadBalancer")
    assert balancer["Properties"]["Subnets"] == ["subnet-0bbbbbbbbbbbbbbb1", "subnet-0bbbbbbbbbbbbbbb2"]
    _, service = one_resource(document, "AWS::ECS::Service", "CodeServerService")
    assert service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"] == [
        "subnet-0aaaaaaaaaaaaaaa1",
        "subnet-0aaaaaaaaaaaaaaa2",
    ]


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"runSize": "1024/512"}, "runSize='1024/512' is not a Fargate size"),
        ({"webserverSize": "big"}, "webserverSize='big' must be 'cpu/memory'"),
        ({"logRetentionDays": 10}, "logRetentionDays=10 must be one of"),
        (
            {"existingVpcId": "vpc-1", "existingVpcAvailabilityZones": "a,b"},
            "existingVpcPrivateSubnetIds must list",
        ),
        (
            {
                "existingVpcId": "vpc-1",
                "existingVpcAvailabilityZones": "a,b",
                "existingVpcPrivateSubnetIds": "s1,s2,s3",
                "existingVpcPublicSubnetIds": "p1,p2",
            },
            "one entry per zone",
        ),
    ],
)
def test_bad_context_is_refused_by_name(synthesized, context, message):
    import aws_cdk as cdk

    from deploy.stack.parameters import read_context

    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        read_context(cdk.App(context=context))


def test_parameters_have_safe_defaults_and_constraints(synthesized):
    parameters = synthesized.document["Parameters"]
    assert "Default" not in parameters["ImageTag"], "every deploy names the image it runs"
    for name in ("CertificateArn", "OidcIssuer", "OidcClientId"):
        assert "Default" not in parameters[name]
    assert parameters["OidcClientSecretName"]["NoEcho"] is True
    for name in (
        "DatasetsBucketName",
        "DatasetAssetsBucketName",
        "TimeseriesBucketName",
        "SnapshotBucketName",
    ):
        assert parameters[name]["AllowedPattern"]
    synthesized.template.has_parameter("WebserverCount", {"Type": "Number", "Default": 1, "MinValue": 0})
    synthesized.template.has_output("LoadBalancerDnsName", Match.any_value())
    synthesized.template.has_output("RunTaskDefinitionFamily", Match.any_value())


def test_the_settings_parameters_default_to_the_code_s_defaults(synthesized):
    """A stack deployed without these parameters behaves as the code does with the variables unset, and
    the README's parameter table says so."""
    from jobs_orchestration.intake.handoff import IntakeLimits

    defaults = {
        "SnapshotRetentionDays": settings.DEFAULTS.snapshot_retention_days,
        "SnapshotCleanupTimezone": settings.DEFAULTS.snapshot_cleanup_timezone,
        "IntakeBatchSize": IntakeLimits().batch_size,
        "IntakeChangelogBatchSize": IntakeLimits().changelog_batch_size,
        "IntakeIntervalSeconds": settings.DEFAULTS.jobs_intake_interval_seconds,
    }
    parameters = synthesized.document["Parameters"]
    assert {name: parameters[name]["Default"] for name in defaults} == defaults
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    shown = ", ".join(f"`{value}`" if isinstance(value, str) else str(value) for value in defaults.values())
    names = ", ".join(f"`{name}`" for name in defaults)
    assert f"| {names} | {shown} |" in readme
