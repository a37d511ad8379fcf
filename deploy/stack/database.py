"""Dagster's own storage (runs, event logs, schedules and sensors): RDS PostgreSQL in the private
subnets, encrypted, never publicly reachable, its credentials generated into Secrets Manager.

The platform's and the Email Parser's databases are not here: they exist already, and the code reaches
them through the URLs in the JOBS_DATABASE_URL and EMAIL_PARSER_DATABASE_URL secrets.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds
from constructs import Construct

from deploy.stack.contract import DAGSTER_DATABASE_NAME
from deploy.stack.network import POSTGRES_PORT, Network
from deploy.stack.parameters import StructureContext

# A current minor release (a bare "16" is refused for new instances). Minor upgrades then apply
# themselves in the maintenance window; CloudFormation leaves the property alone until it is changed.
POSTGRES_VERSION = rds.PostgresEngineVersion.VER_16_13
DATABASE_USERNAME = "dagster"


def build_database(scope: Construct, network: Network, context: StructureContext) -> rds.DatabaseInstance:
    return rds.DatabaseInstance(
        scope,
        "DagsterDatabase",
        engine=rds.DatabaseInstanceEngine.postgres(version=POSTGRES_VERSION),
        instance_type=ec2.InstanceType(context.database_instance_class),
        vpc=network.vpc,
        vpc_subnets=network.private_subnets,
        security_groups=[network.database],
        port=POSTGRES_PORT,
        database_name=DAGSTER_DATABASE_NAME,
        credentials=rds.Credentials.from_generated_secret(
            DATABASE_USERNAME, secret_name=f"{cdk.Aws.STACK_NAME}/dagster-database"
        ),
        storage_encrypted=True,
        publicly_accessible=False,
        multi_az=context.database_multi_az,
        allocated_storage=context.database_allocated_storage_gib,
        max_allocated_storage=context.database_allocated_storage_gib * 5,
        storage_type=rds.StorageType.GP3,
        backup_retention=cdk.Duration.days(7),
        deletion_protection=True,
        auto_minor_version_upgrade=True,
        enable_performance_insights=False,
        cloudwatch_logs_exports=["postgresql"],
        # Run history outlives a stack deletion: CloudFormation takes a final snapshot instead.
        removal_policy=cdk.RemovalPolicy.SNAPSHOT,
    )
