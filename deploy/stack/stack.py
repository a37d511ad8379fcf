"""The whole deployment as one CloudFormation stack."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from deploy.stack import contract
from deploy.stack.database import build_database
from deploy.stack.load_balancer import build_load_balancer
from deploy.stack.messaging import build_messaging
from deploy.stack.network import build_network
from deploy.stack.parameters import declare_parameters, read_context
from deploy.stack.services import build_services
from deploy.stack.storage import build_storage


class JobsOrchestrationStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.parameters = declare_parameters(self)
        context = read_context(self)
        self.network = build_network(self, self.parameters, context)
        self.database = build_database(self, self.network, context)
        self.messaging = build_messaging(self, self.parameters)
        self.storage = build_storage(self, self.parameters)
        self.services = build_services(
            self, self.parameters, context, self.network, self.database, self.messaging, self.storage
        )
        self.load_balancer = build_load_balancer(self, self.parameters, self.network, self.services.webserver)
        self._outputs()

    def _outputs(self) -> None:
        private_subnets = self.network.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        outputs = {
            "LoadBalancerDnsName": (
                self.load_balancer.load_balancer_dns_name,
                "Point the UI's host name (CNAME) here",
            ),
            "JobQueueUrl": (
                self.messaging.job_queue.queue_url,
                "Where the platform's services send job messages",
            ),
            "DeadLetterQueueUrl": (
                self.messaging.dead_letter_queue.queue_url,
                "Dead letters: jobs-orchestration dlq",
            ),
            "ChangelogTopicArn": (
                self.messaging.changelog_topic.topic_arn,
                "Subscribe changelog consumers here",
            ),
            "AlertsTopicArn": (self.messaging.alerts_topic.topic_arn, "Subscribe the operators here"),
            "ClusterName": (self.services.cluster.cluster_name, "ECS cluster of the services and runs"),
            "RunTaskDefinitionFamily": (
                self.services.run_task_definition.family,
                "Task definition of runs and one-off tasks (container 'run')",
            ),
            "RunTaskSubnets": (cdk.Fn.join(",", private_subnets.subnet_ids), "Subnets for one-off tasks"),
            "RunTaskSecurityGroup": (
                self.network.daemon_and_runs.security_group_id,
                "Security group for one-off tasks",
            ),
            "JobsDatabaseUrlSecretArn": (
                self.storage.jobs_database_url.secret_arn,
                "Set JOBS_DATABASE_URL here before the first deploy of the services",
            ),
            "EmailParserDatabaseUrlSecretArn": (
                self.storage.email_parser_database_url.secret_arn,
                "Set EMAIL_PARSER_DATABASE_URL here",
            ),
            "ComputeLogBucketName": (self.storage.compute_log_bucket.bucket_name, "Run and tick logs"),
            "CodeServerHost": (contract.CODE_SERVER_HOST, "Service discovery name of the code server"),
        }
        for name, (value, description) in outputs.items():
            cdk.CfnOutput(self, name, value=value, description=description)
