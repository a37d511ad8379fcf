"""The VPC (a new one, or an existing one named in context) and the security groups between the parts.

Who may talk to whom:
- internet (AllowedIngressCidr) -> load balancer: 443, and 80 only to be redirected to 443;
- load balancer -> webserver: 3000, and nothing else reaches the webserver;
- webserver, daemon -> code server: 4000 (gRPC);
- webserver, daemon, code server, run tasks -> Dagster's database: 5432.
Run tasks carry the daemon's security group: the EcsRunLauncher starts them with the network
configuration of the daemon's own task.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from deploy.stack.contract import CODE_SERVER_PORT, WEBSERVER_PORT
from deploy.stack.parameters import DeploymentParameters, StructureContext

POSTGRES_PORT = 5432
HTTPS_PORT = 443


@dataclass(frozen=True)
class Network:
    vpc: ec2.IVpc
    load_balancer: ec2.SecurityGroup
    webserver: ec2.SecurityGroup
    code_server: ec2.SecurityGroup
    daemon_and_runs: ec2.SecurityGroup
    database: ec2.SecurityGroup

    @property
    def private_subnets(self) -> ec2.SubnetSelection:
        return ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)

    @property
    def public_subnets(self) -> ec2.SubnetSelection:
        return ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC)


def build_network(scope: Construct, parameters: DeploymentParameters, context: StructureContext) -> Network:
    vpc = _vpc(scope, context)

    def group(name: str, description: str) -> ec2.SecurityGroup:
        # Outbound traffic is opened rule by rule below.
        return ec2.SecurityGroup(scope, name, vpc=vpc, description=description, allow_all_outbound=False)

    load_balancer = group("LoadBalancerSecurityGroup", "Dagster UI load balancer")
    webserver = group("WebserverSecurityGroup", "Dagster webserver: reached only from the load balancer")
    code_server = group(
        "CodeServerSecurityGroup", "Dagster gRPC code server: reached by the webserver and daemon"
    )
    daemon_and_runs = group("DaemonSecurityGroup", "Dagster daemon and the run tasks it launches")
    database = group("DatabaseSecurityGroup", "Dagster instance database")

    internet = ec2.Peer.ipv4(parameters.allowed_ingress_cidr.value_as_string)
    load_balancer.add_ingress_rule(internet, ec2.Port.tcp(HTTPS_PORT), "Dagster UI over HTTPS")
    load_balancer.add_ingress_rule(internet, ec2.Port.tcp(80), "HTTP, answered with a redirect to HTTPS")

    webserver.connections.allow_from(
        load_balancer, ec2.Port.tcp(WEBSERVER_PORT), "Load balancer to the webserver"
    )
    for client, name in ((webserver, "webserver"), (daemon_and_runs, "daemon")):
        code_server.connections.allow_from(client, ec2.Port.tcp(CODE_SERVER_PORT), f"gRPC from the {name}")
    for client, name in (
        (webserver, "webserver"),
        (daemon_and_runs, "daemon and run tasks"),
        (code_server, "code server"),
    ):
        database.connections.allow_from(
            client, ec2.Port.tcp(POSTGRES_PORT), f"Instance storage from the {name}"
        )
        # AWS APIs (ECR image pulls, SQS, SNS, S3, ECS, Secrets Manager) over HTTPS.
        client.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(HTTPS_PORT), "AWS APIs")
    for client in (code_server, daemon_and_runs):
        # Sensors and runs use the platform's and the Email Parser's databases, which live outside
        # this stack; the webserver and the daemon itself never load the project's code.
        client.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(POSTGRES_PORT), "Platform and Email Parser databases"
        )
    return Network(vpc, load_balancer, webserver, code_server, daemon_and_runs, database)


def _vpc(scope: Construct, context: StructureContext) -> ec2.IVpc:
    existing = context.existing_vpc
    if existing is not None:
        # Attributes rather than a lookup: synthesis stays offline and needs no AWS account.
        return ec2.Vpc.from_vpc_attributes(
            scope,
            "Vpc",
            vpc_id=existing.vpc_id,
            availability_zones=existing.availability_zones,
            private_subnet_ids=existing.private_subnet_ids,
            public_subnet_ids=existing.public_subnet_ids,
        )
    return ec2.Vpc(
        scope,
        "Vpc",
        max_azs=2,
        nat_gateways=context.nat_gateways,
        # Image layers (ECR serves them from S3), the platform's objects and the compute logs travel
        # through a free gateway endpoint instead of the NAT gateway, which bills every gigabyte.
        gateway_endpoints={"S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)},
        subnet_configuration=[
            ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
            ec2.SubnetConfiguration(
                name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=22
            ),
        ],
    )
