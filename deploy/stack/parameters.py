"""What one platform's deployment differs from another's in.

Values that can change without reshaping the stack are CloudFormation parameters, given at deploy time
(`cdk deploy --parameters Name=value`): bucket, queue and topic names, the sign-in provider, the
certificate, service counts. Choices that reshape the template or must be checked together are CDK
context, given at synth time (`cdk deploy -c name=value`): an existing VPC instead of a new one, the
database's class and availability, log retention, task sizes ("cpu/memory": a Fargate size is a pair,
and two independent parameters would admit pairs Fargate refuses).

Context values: existingVpcId with existingVpcAvailabilityZones, existingVpcPrivateSubnetIds and
existingVpcPublicSubnetIds (comma-separated, one per zone); natGateways (1); databaseInstanceClass
(t4g.small); databaseMultiAz (false); databaseAllocatedStorageGiB (20); logRetentionDays (30);
webserverSize, daemonSize, codeServerSize (512/1024); runSize (1024/2048).
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_logs as logs
from constructs import Construct

from jobs_orchestration.intake.handoff import IntakeLimits
from jobs_orchestration.settings import DEFAULTS

FARGATE_MEMORY_FOR_CPU = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
}
"""Fargate's CPU units and the memory sizes (MiB) each can have."""
DEFAULT_TASK_SIZES = {
    "webserver": "512/1024",
    "daemon": "512/1024",
    "codeServer": "512/1024",
    "run": "1024/2048",
}
"""Context `<component>Size` = "cpu/memory"; a run task holds the deletion pipeline's threads."""

S3_BUCKET_NAME_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
S3_PREFIX_PATTERN = r"^[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*$"
QUEUE_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,80}$"
TOPIC_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,256}$"
HTTPS_URL_PATTERN = r"^https://\S+$"

LOG_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
}
"""CloudWatch Logs retention periods offered through the `logRetentionDays` context value."""


@dataclass(frozen=True)
class TaskSize:
    cpu: int
    memory: int

    @classmethod
    def parse(cls, name: str, text: str) -> TaskSize:
        cpu_text, _, memory_text = str(text).partition("/")
        try:
            size = cls(int(cpu_text), int(memory_text))
        except ValueError:
            raise ValueError(f"context {name}={text!r} must be 'cpu/memory', e.g. '512/1024'") from None
        if size.memory not in FARGATE_MEMORY_FOR_CPU.get(size.cpu, ()):
            raise ValueError(
                f"context {name}={text!r} is not a Fargate size: CPU units {sorted(FARGATE_MEMORY_FOR_CPU)}, "
                f"and for {size.cpu} CPU memory {list(FARGATE_MEMORY_FOR_CPU.get(size.cpu, ()))} MiB"
            )
        return size


@dataclass(frozen=True)
class ExistingVpc:
    vpc_id: str
    availability_zones: list[str]
    private_subnet_ids: list[str]
    public_subnet_ids: list[str]


@dataclass(frozen=True)
class DeploymentParameters:
    image_repository_name: cdk.CfnParameter
    image_tag: cdk.CfnParameter
    datasets_bucket_name: cdk.CfnParameter
    dataset_assets_bucket_name: cdk.CfnParameter
    timeseries_bucket_name: cdk.CfnParameter
    snapshot_bucket_name: cdk.CfnParameter
    snapshot_prefix: cdk.CfnParameter
    job_queue_name: cdk.CfnParameter
    dead_letter_queue_name: cdk.CfnParameter
    changelog_topic_name: cdk.CfnParameter
    alerts_topic_name: cdk.CfnParameter
    certificate_arn: cdk.CfnParameter
    webserver_url: cdk.CfnParameter
    oidc_issuer: cdk.CfnParameter
    oidc_authorization_endpoint: cdk.CfnParameter
    oidc_token_endpoint: cdk.CfnParameter
    oidc_user_info_endpoint: cdk.CfnParameter
    oidc_client_id: cdk.CfnParameter
    oidc_client_secret_name: cdk.CfnParameter
    allowed_ingress_cidr: cdk.CfnParameter
    webserver_count: cdk.CfnParameter
    code_server_count: cdk.CfnParameter
    daemon_count: cdk.CfnParameter
    snapshot_retention_days: cdk.CfnParameter
    snapshot_cleanup_timezone: cdk.CfnParameter
    intake_batch_size: cdk.CfnParameter
    intake_changelog_batch_size: cdk.CfnParameter
    intake_interval_seconds: cdk.CfnParameter
    compute_log_expiration_days: cdk.CfnParameter


@dataclass(frozen=True)
class StructureContext:
    existing_vpc: ExistingVpc | None
    nat_gateways: int
    database_instance_class: str
    database_multi_az: bool
    database_allocated_storage_gib: int
    log_retention: logs.RetentionDays
    task_sizes: dict[str, TaskSize]
    """webserver, daemon, codeServer, run -> size."""


def declare_parameters(scope: Construct) -> DeploymentParameters:
    def text(name: str, description: str, default: str | None = None, **rules) -> cdk.CfnParameter:
        return cdk.CfnParameter(scope, name, type="String", description=description, default=default, **rules)

    def number(name: str, description: str, default: int, minimum: int, maximum: int) -> cdk.CfnParameter:
        return cdk.CfnParameter(
            scope,
            name,
            type="Number",
            description=description,
            default=default,
            min_value=minimum,
            max_value=maximum,
        )

    bucket = {"allowed_pattern": S3_BUCKET_NAME_PATTERN, "constraint_description": "an S3 bucket name"}
    url = {"allowed_pattern": HTTPS_URL_PATTERN, "constraint_description": "an https:// URL"}
    return DeploymentParameters(
        image_repository_name=text(
            "ImageRepositoryName",
            "ECR repository the image is pushed to (in this account and region)",
            "jobs-orchestration",
        ),
        image_tag=text(
            "ImageTag",
            "Tag of the image every container runs (an immutable tag such as the git commit)",
            allowed_pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$",
        ),
        datasets_bucket_name=text(
            "DatasetsBucketName", "The platform's bucket of package files", "platform-datasets", **bucket
        ),
        dataset_assets_bucket_name=text(
            "DatasetAssetsBucketName",
            "The platform's bucket of dataset banners and readmes",
            "platform-dataset-assets",
            **bucket,
        ),
        timeseries_bucket_name=text(
            "TimeseriesBucketName",
            "The platform's bucket of time-series range objects",
            "platform-timeseries",
            **bucket,
        ),
        snapshot_bucket_name=text(
            "SnapshotBucketName",
            "The Email Parser's bucket of parse-session snapshots",
            "email-parser-snapshots",
            **bucket,
        ),
        snapshot_prefix=text(
            "SnapshotPrefix",
            "Key prefix of the snapshots in their bucket (no leading or trailing slash)",
            "snapshots",
            allowed_pattern=S3_PREFIX_PATTERN,
            constraint_description="key segments separated by single slashes",
        ),
        job_queue_name=text(
            "JobQueueName",
            "Name of the job queue the platform's services send to",
            "background_job_queue",
            allowed_pattern=QUEUE_NAME_PATTERN,
        ),
        dead_letter_queue_name=text(
            "DeadLetterQueueName",
            "Name of the job queue's dead-letter queue",
            "background_job_queue-dead-letter",
            allowed_pattern=QUEUE_NAME_PATTERN,
        ),
        changelog_topic_name=text(
            "ChangelogTopicName",
            "Name of the SNS topic of dataset changelog events",
            "dataset-changelog-events",
            allowed_pattern=TOPIC_NAME_PATTERN,
        ),
        alerts_topic_name=text(
            "AlertsTopicName",
            "Name of the SNS topic of operator alerts",
            "jobs-orchestration-alerts",
            allowed_pattern=TOPIC_NAME_PATTERN,
        ),
        certificate_arn=text(
            "CertificateArn",
            "ACM certificate (same region) for the Dagster UI's host name",
            allowed_pattern=r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[A-Za-z0-9-]+$",
            constraint_description="an ACM certificate ARN",
        ),
        webserver_url=text(
            "WebserverUrl",
            "The address operators open the Dagster UI at (the certificate's host name); alerts link runs there",
            **url,
        ),
        oidc_issuer=text("OidcIssuer", "OpenID Connect issuer of the sign-in provider", **url),
        oidc_authorization_endpoint=text(
            "OidcAuthorizationEndpoint", "The provider's authorization endpoint", **url
        ),
        oidc_token_endpoint=text("OidcTokenEndpoint", "The provider's token endpoint", **url),
        oidc_user_info_endpoint=text("OidcUserInfoEndpoint", "The provider's user info endpoint", **url),
        oidc_client_id=text("OidcClientId", "Client id of the Dagster UI registered with the provider"),
        oidc_client_secret_name=text(
            "OidcClientSecretName",
            "Name of the Secrets Manager secret (plain text) holding the client secret; created before the deploy",
            "jobs-orchestration/oidc-client-secret",
            # Only a name, but parameters named like secrets are expected to be hidden.
            no_echo=True,
        ),
        allowed_ingress_cidr=text(
            "AllowedIngressCidr",
            "Addresses that may reach the load balancer (sign-in still applies)",
            "0.0.0.0/0",
            allowed_pattern=r"^\d{1,3}(\.\d{1,3}){3}/\d{1,2}$",
            constraint_description="an IPv4 CIDR block",
        ),
        webserver_count=number("WebserverCount", "Webserver tasks behind the load balancer", 1, 0, 10),
        code_server_count=number(
            "CodeServerCount", "Code server tasks (one is enough for most platforms)", 1, 0, 4
        ),
        daemon_count=number(
            "DaemonCount",
            "1 runs the daemon; 0 pauses sensors, schedules and the run queue (never more than 1)",
            1,
            0,
            1,
        ),
        snapshot_retention_days=number(
            "SnapshotRetentionDays",
            "Days a parse-session snapshot is kept (SNAPSHOT_RETENTION_DAYS)",
            DEFAULTS.snapshot_retention_days,
            1,
            3650,
        ),
        snapshot_cleanup_timezone=text(
            "SnapshotCleanupTimezone",
            "IANA zone of the 03:00 snapshot cleanup",
            DEFAULTS.snapshot_cleanup_timezone,
            allowed_pattern=r"^[A-Za-z_]+(/[A-Za-z0-9_+-]+)*$",
        ),
        intake_batch_size=number(
            "IntakeBatchSize",
            "Most job messages of one type per run (JOBS_INTAKE_BATCH_SIZE)",
            IntakeLimits.batch_size,
            1,
            1000,
        ),
        intake_changelog_batch_size=number(
            "IntakeChangelogBatchSize",
            "Most changelog messages per run (JOBS_INTAKE_CHANGELOG_BATCH_SIZE)",
            IntakeLimits.changelog_batch_size,
            1,
            5000,
        ),
        intake_interval_seconds=number(
            "IntakeIntervalSeconds",
            "Least time between two intake ticks (JOBS_INTAKE_INTERVAL_SECONDS)",
            DEFAULTS.jobs_intake_interval_seconds,
            1,
            3600,
        ),
        compute_log_expiration_days=number(
            "ComputeLogExpirationDays",
            "Days run and tick logs are kept in the compute log bucket",
            90,
            1,
            3650,
        ),
    )


def read_context(scope: Construct) -> StructureContext:
    def get(name: str, default):
        value = scope.node.try_get_context(name)
        return default if value is None else value

    def listed(name: str) -> list[str]:
        value = get(name, [])
        items = value.split(",") if isinstance(value, str) else list(value)
        return [item.strip() for item in items if item.strip()]

    existing = None
    vpc_id = get("existingVpcId", "")
    if vpc_id:
        existing = ExistingVpc(
            vpc_id=vpc_id,
            availability_zones=listed("existingVpcAvailabilityZones"),
            private_subnet_ids=listed("existingVpcPrivateSubnetIds"),
            public_subnet_ids=listed("existingVpcPublicSubnetIds"),
        )
        for field, values in (
            ("existingVpcAvailabilityZones", existing.availability_zones),
            ("existingVpcPrivateSubnetIds", existing.private_subnet_ids),
            ("existingVpcPublicSubnetIds", existing.public_subnet_ids),
        ):
            if len(values) < 2:
                raise ValueError(
                    f"context {field} must list at least two entries (one per zone) with existingVpcId"
                )
        if (
            not len(existing.availability_zones)
            == len(existing.private_subnet_ids)
            == len(existing.public_subnet_ids)
        ):
            raise ValueError(
                "context existingVpcAvailabilityZones, existingVpcPrivateSubnetIds and existingVpcPublicSubnetIds "
                "must list one entry per zone, in the same order"
            )
    retention_days = int(get("logRetentionDays", 30))
    retention = LOG_RETENTION.get(retention_days)
    if retention is None:
        raise ValueError(f"context logRetentionDays={retention_days} must be one of {sorted(LOG_RETENTION)}")
    return StructureContext(
        existing_vpc=existing,
        nat_gateways=int(get("natGateways", 1)),
        database_instance_class=str(get("databaseInstanceClass", "t4g.small")),
        database_multi_az=str(get("databaseMultiAz", "false")).lower() == "true",
        database_allocated_storage_gib=int(get("databaseAllocatedStorageGiB", 20)),
        log_retention=retention,
        task_sizes={
            component: TaskSize.parse(f"{component}Size", get(f"{component}Size", default))
            for component, default in DEFAULT_TASK_SIZES.items()
        },
    )
