"""The ECS cluster and what runs on it: the webserver, the daemon and the gRPC code server as Fargate
services, the task definition the EcsRunLauncher starts each run on, and their logs.

Every container runs the one image (Dockerfile); the command and JOBS_ORCHESTRATION_ROLE say which
part it plays. The code server registers in Cloud Map as `code.<namespace>`, where the webserver and
the daemon find it (deploy/workspace.yaml reads DAGSTER_CODE_SERVER_HOST).
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_servicediscovery as servicediscovery
from constructs import Construct

from deploy.stack import contract
from deploy.stack import iam as policies
from deploy.stack.messaging import Messaging
from deploy.stack.network import Network
from deploy.stack.parameters import DeploymentParameters, StructureContext, TaskSize
from deploy.stack.storage import Storage
from jobs_orchestration import settings

HEALTH_CHECK = ecs.HealthCheck(
    command=["CMD", "/app/deploy/healthcheck.sh"],
    interval=cdk.Duration.seconds(30),
    timeout=cdk.Duration.seconds(10),
    retries=3,
    start_period=cdk.Duration.seconds(90),
)


@dataclass(frozen=True)
class Services:
    cluster: ecs.Cluster
    namespace: servicediscovery.PrivateDnsNamespace
    webserver: ecs.FargateService
    daemon: ecs.FargateService
    code_server: ecs.FargateService
    run_task_definition: ecs.FargateTaskDefinition
    task_roles: dict[str, iam.Role]
    """Container name -> its task role."""
    execution_roles: dict[str, iam.Role]
    log_groups: dict[str, logs.LogGroup]


def build_services(
    scope: Construct,
    parameters: DeploymentParameters,
    context: StructureContext,
    network: Network,
    database: rds.DatabaseInstance,
    messaging: Messaging,
    storage: Storage,
) -> Services:
    stack = cdk.Stack.of(scope)
    cluster = ecs.Cluster(scope, "Cluster", vpc=network.vpc)
    namespace = servicediscovery.PrivateDnsNamespace(
        scope, "Namespace", name=contract.SERVICE_DISCOVERY_NAMESPACE, vpc=network.vpc
    )
    repository = ecr.Repository.from_repository_name(
        scope, "ImageRepository", parameters.image_repository_name.value_as_string
    )
    image = ecs.ContainerImage.from_ecr_repository(repository, tag=parameters.image_tag.value_as_string)

    titles = {
        contract.WEBSERVER_CONTAINER: "Webserver",
        contract.DAEMON_CONTAINER: "Daemon",
        contract.CODE_SERVER_CONTAINER: "CodeServer",
        contract.RUN_CONTAINER: "Run",
    }
    log_groups = {
        name: logs.LogGroup(
            scope,
            f"{titles[name]}LogGroup",
            retention=context.log_retention,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        for name in titles
    }
    task_roles = {
        name: policies.task_role(scope, f"{titles[name]}TaskRole", f"{name} task") for name in titles
    }
    execution_roles = {
        name: policies.task_role(
            scope, f"{titles[name]}ExecutionRole", f"{name} task execution (image, logs, secrets)"
        )
        for name in titles
    }

    run_family = f"{cdk.Aws.STACK_NAME}-run"
    run_definition = _task_definition(
        scope,
        "RunTaskDefinition",
        context.task_sizes["run"],
        task_roles,
        execution_roles,
        contract.RUN_CONTAINER,
        run_family,
    )
    target = policies.RunTaskTarget(
        cluster=cluster,
        run_task_family=run_family,
        run_task_role=task_roles[contract.RUN_CONTAINER],
        run_execution_role=execution_roles[contract.RUN_CONTAINER],
        run_log_group=log_groups[contract.RUN_CONTAINER],
    )

    instance_environment = {
        "AWS_REGION": cdk.Aws.REGION,
        contract.DAGSTER_PG_HOST: database.db_instance_endpoint_address,
        contract.DAGSTER_PG_PORT: database.db_instance_endpoint_port,
        contract.DAGSTER_PG_DB: contract.DAGSTER_DATABASE_NAME,
        # libpq refuses a database connection without TLS (RDS offers it). A database URL that must
        # differ says so itself (?sslmode=...), which takes precedence.
        "PGSSLMODE": "require",
        contract.DAGSTER_COMPUTE_LOG_BUCKET: storage.compute_log_bucket.bucket_name,
        contract.DAGSTER_COMPUTE_LOG_PREFIX: contract.COMPUTE_LOG_PREFIX,
        # The family, not the ARN: the run task definition cannot name itself, and the launcher takes
        # the family's newest revision.
        contract.DAGSTER_RUN_TASK_DEFINITION: run_family,
        contract.DAGSTER_RUN_TASK_ROLE_ARN: target.run_task_role.role_arn,
        contract.DAGSTER_ECS_CLUSTER: cluster.cluster_arn,
    }
    database_secret = database.secret
    assert database_secret is not None  # generated credentials always come with their secret
    instance_secrets = {
        contract.DAGSTER_PG_USERNAME: ecs.Secret.from_secrets_manager(database_secret, "username"),
        contract.DAGSTER_PG_PASSWORD: ecs.Secret.from_secrets_manager(database_secret, "password"),
    }
    code_environment = {
        settings.JOBS_QUEUE_URL: messaging.job_queue.queue_url,
        settings.JOBS_DEAD_LETTER_QUEUE_URL: messaging.dead_letter_queue.queue_url,
        settings.CHANGELOG_TOPIC_ARN: messaging.changelog_topic.topic_arn,
        settings.ALERTS_TOPIC_ARN: messaging.alerts_topic.topic_arn,
        settings.DAGSTER_WEBSERVER_URL: parameters.webserver_url.value_as_string,
        settings.TIMESERIES_BUCKET: parameters.timeseries_bucket_name.value_as_string,
        settings.SNAPSHOT_STORAGE_URL: cdk.Fn.join(
            "",
            [
                "s3://",
                parameters.snapshot_bucket_name.value_as_string,
                "/",
                parameters.snapshot_prefix.value_as_string,
            ],
        ),
        settings.SNAPSHOT_RETENTION_DAYS: parameters.snapshot_retention_days.value_as_string,
        settings.SNAPSHOT_CLEANUP_TIMEZONE: parameters.snapshot_cleanup_timezone.value_as_string,
        settings.JOBS_INTAKE_BATCH_SIZE: parameters.intake_batch_size.value_as_string,
        settings.JOBS_INTAKE_CHANGELOG_BATCH_SIZE: parameters.intake_changelog_batch_size.value_as_string,
        settings.JOBS_INTAKE_INTERVAL_SECONDS: parameters.intake_interval_seconds.value_as_string,
    }
    code_secrets = {
        settings.JOBS_DATABASE_URL: ecs.Secret.from_secrets_manager(storage.jobs_database_url),
        settings.EMAIL_PARSER_DATABASE_URL: ecs.Secret.from_secrets_manager(
            storage.email_parser_database_url
        ),
    }
    discovery = {contract.DAGSTER_CODE_SERVER_HOST: contract.CODE_SERVER_HOST}

    def container(definition: ecs.FargateTaskDefinition, name: str, **options) -> ecs.ContainerDefinition:
        environment = {**instance_environment, contract.ROLE_VARIABLE: contract.ROLES[name]}
        environment.update(options.pop("environment", {}))
        return definition.add_container(
            name,
            container_name=name,
            image=image,
            environment=environment,
            secrets={**instance_secrets, **options.pop("secrets", {})},
            logging=ecs.LogDrivers.aws_logs(stream_prefix=name, log_group=log_groups[name]),
            essential=True,
            **options,
        )

    container(run_definition, contract.RUN_CONTAINER, environment=code_environment, secrets=code_secrets)

    code_definition = _task_definition(
        scope,
        "CodeServerTaskDefinition",
        context.task_sizes["codeServer"],
        task_roles,
        execution_roles,
        contract.CODE_SERVER_CONTAINER,
    )
    container(
        code_definition,
        contract.CODE_SERVER_CONTAINER,
        command=contract.CODE_SERVER_COMMAND,
        environment=code_environment,
        secrets=code_secrets,
        port_mappings=[ecs.PortMapping(container_port=contract.CODE_SERVER_PORT, name="grpc")],
        health_check=HEALTH_CHECK,
    )
    webserver_definition = _task_definition(
        scope,
        "WebserverTaskDefinition",
        context.task_sizes["webserver"],
        task_roles,
        execution_roles,
        contract.WEBSERVER_CONTAINER,
    )
    container(
        webserver_definition,
        contract.WEBSERVER_CONTAINER,
        command=contract.WEBSERVER_COMMAND,
        environment=discovery,
        port_mappings=[ecs.PortMapping(container_port=contract.WEBSERVER_PORT, name="http")],
        health_check=HEALTH_CHECK,
    )
    daemon_definition = _task_definition(
        scope,
        "DaemonTaskDefinition",
        context.task_sizes["daemon"],
        task_roles,
        execution_roles,
        contract.DAEMON_CONTAINER,
    )
    container(
        daemon_definition,
        contract.DAEMON_CONTAINER,
        command=contract.DAEMON_COMMAND,
        environment=discovery,
        health_check=HEALTH_CHECK,
    )

    policies.attach(
        scope,
        "CodeServerTaskPolicy",
        task_roles[contract.CODE_SERVER_CONTAINER],
        policies.code_server_statements(messaging, storage),
    )
    policies.attach(
        scope,
        "DaemonTaskPolicy",
        task_roles[contract.DAEMON_CONTAINER],
        policies.daemon_statements(target, storage, stack),
    )
    policies.attach(
        scope,
        "WebserverTaskPolicy",
        task_roles[contract.WEBSERVER_CONTAINER],
        policies.webserver_statements(target, storage, stack),
    )
    policies.attach(
        scope,
        "RunTaskPolicy",
        task_roles[contract.RUN_CONTAINER],
        policies.run_task_statements(messaging, storage, parameters.snapshot_prefix.value_as_string),
    )

    def service(name: str, definition: ecs.FargateTaskDefinition, count: cdk.CfnParameter, groups, **options):
        return ecs.FargateService(
            scope,
            name,
            cluster=cluster,
            task_definition=definition,
            desired_count=count.value_as_number,
            security_groups=groups,
            vpc_subnets=network.private_subnets,
            assign_public_ip=False,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            enable_execute_command=False,
            **options,
        )

    code_server = service(
        "CodeServerService",
        code_definition,
        parameters.code_server_count,
        [network.code_server],
        cloud_map_options=ecs.CloudMapOptions(
            name=contract.CODE_SERVER_DISCOVERY_NAME,
            cloud_map_namespace=namespace,
            dns_record_type=servicediscovery.DnsRecordType.A,
            dns_ttl=cdk.Duration.seconds(10),
        ),
        min_healthy_percent=100,
        max_healthy_percent=200,
    )
    webserver = service(
        "WebserverService",
        webserver_definition,
        parameters.webserver_count,
        [network.webserver],
        min_healthy_percent=100,
        max_healthy_percent=200,
        health_check_grace_period=cdk.Duration.seconds(120),
    )
    # Never two daemons at once: a deploy stops the old one before it starts the new one.
    daemon = service(
        "DaemonService",
        daemon_definition,
        parameters.daemon_count,
        [network.daemon_and_runs],
        min_healthy_percent=0,
        max_healthy_percent=100,
    )
    # The webserver and daemon load the code location at start: give them a code server to find.
    webserver.node.add_dependency(code_server)
    daemon.node.add_dependency(code_server)
    return Services(
        cluster,
        namespace,
        webserver,
        daemon,
        code_server,
        run_definition,
        task_roles,
        execution_roles,
        log_groups,
    )


def _task_definition(
    scope: Construct,
    name: str,
    size: TaskSize,
    task_roles: dict[str, iam.Role],
    execution_roles: dict[str, iam.Role],
    container_name: str,
    family: str | None = None,
) -> ecs.FargateTaskDefinition:
    return ecs.FargateTaskDefinition(
        scope,
        name,
        family=family,
        cpu=size.cpu,
        memory_limit_mib=size.memory,
        task_role=task_roles[container_name],
        execution_role=execution_roles[container_name],
        runtime_platform=ecs.RuntimePlatform(
            operating_system_family=ecs.OperatingSystemFamily.LINUX,
            cpu_architecture=ecs.CpuArchitecture.X86_64,
        ),
    )
