"""Buckets and the secrets the operator fills in.

The platform's buckets and the Email Parser's snapshot bucket exist already and belong to those
systems: they are referenced by name only, so this stack never creates, changes or deletes them.
The compute log bucket (run and tick logs shown in the UI) belongs to this stack.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from deploy.stack.parameters import DeploymentParameters
from jobs_orchestration import settings


@dataclass(frozen=True)
class Storage:
    datasets_bucket: s3.IBucket
    dataset_assets_bucket: s3.IBucket
    timeseries_bucket: s3.IBucket
    snapshot_bucket: s3.IBucket
    compute_log_bucket: s3.Bucket
    jobs_database_url: secretsmanager.Secret
    email_parser_database_url: secretsmanager.Secret

    @property
    def platform_buckets(self) -> list[s3.IBucket]:
        """The buckets deletions remove objects from."""
        return [self.datasets_bucket, self.dataset_assets_bucket, self.timeseries_bucket]


DATABASE_URL_PLACEHOLDER_NOTE = (
    "Placeholder generated at creation: set the full SQLAlchemy URL "
    "(postgresql+psycopg2://user:password@host:5432/database) with `aws secretsmanager put-secret-value`"
)


def build_storage(scope: Construct, parameters: DeploymentParameters) -> Storage:
    def existing(name: str, parameter: cdk.CfnParameter) -> s3.IBucket:
        return s3.Bucket.from_bucket_name(scope, name, parameter.value_as_string)

    compute_logs = s3.Bucket(
        scope,
        "ComputeLogBucket",
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        versioned=False,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        lifecycle_rules=[
            s3.LifecycleRule(
                id="expire-logs",
                expiration=cdk.Duration.days(parameters.compute_log_expiration_days.value_as_number),
                abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
            )
        ],
        removal_policy=cdk.RemovalPolicy.RETAIN,
    )

    def database_url(name: str, variable: str) -> secretsmanager.Secret:
        return secretsmanager.Secret(
            scope,
            name,
            secret_name=f"{cdk.Aws.STACK_NAME}/{variable}",
            description=f"{variable} of the jobs: {DATABASE_URL_PLACEHOLDER_NOTE}",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=32, exclude_punctuation=True
            ),
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )

    return Storage(
        datasets_bucket=existing("DatasetsBucket", parameters.datasets_bucket_name),
        dataset_assets_bucket=existing("DatasetAssetsBucket", parameters.dataset_assets_bucket_name),
        timeseries_bucket=existing("TimeseriesBucket", parameters.timeseries_bucket_name),
        snapshot_bucket=existing("SnapshotBucket", parameters.snapshot_bucket_name),
        compute_log_bucket=compute_logs,
        jobs_database_url=database_url("JobsDatabaseUrlSecret", settings.JOBS_DATABASE_URL),
        email_parser_database_url=database_url(
            "EmailParserDatabaseUrlSecret", settings.EMAIL_PARSER_DATABASE_URL
        ),
    )
