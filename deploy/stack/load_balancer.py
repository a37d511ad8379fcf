"""The internet-facing load balancer in front of the webserver. Dagster's UI has no sign-in of its own,
so the HTTPS listener's first action authenticates every request against the platform's OpenID Connect
provider and only then forwards it; plain HTTP is redirected to HTTPS. Health checks go straight to
the targets and need no sign-in.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from constructs import Construct

from deploy.stack.contract import WEBSERVER_CONTAINER, WEBSERVER_PORT
from deploy.stack.network import HTTPS_PORT, Network
from deploy.stack.parameters import DeploymentParameters

SESSION_TIMEOUT = cdk.Duration.hours(12)


def build_load_balancer(
    scope: Construct, parameters: DeploymentParameters, network: Network, webserver: ecs.FargateService
) -> elbv2.ApplicationLoadBalancer:
    load_balancer = elbv2.ApplicationLoadBalancer(
        scope,
        "LoadBalancer",
        vpc=network.vpc,
        internet_facing=True,
        vpc_subnets=network.public_subnets,
        security_group=network.load_balancer,
        drop_invalid_header_fields=True,
    )
    targets = elbv2.ApplicationTargetGroup(
        scope,
        "WebserverTargetGroup",
        vpc=network.vpc,
        port=WEBSERVER_PORT,
        protocol=elbv2.ApplicationProtocol.HTTP,
        target_type=elbv2.TargetType.IP,
        targets=[
            webserver.load_balancer_target(container_name=WEBSERVER_CONTAINER, container_port=WEBSERVER_PORT)
        ],
        health_check=elbv2.HealthCheck(
            path="/server_info", healthy_http_codes="200", interval=cdk.Duration.seconds(30)
        ),
        deregistration_delay=cdk.Duration.seconds(30),
    )
    client_secret = cdk.SecretValue.secrets_manager(parameters.oidc_client_secret_name.value_as_string)
    load_balancer.add_listener(
        "HttpsListener",
        port=HTTPS_PORT,
        protocol=elbv2.ApplicationProtocol.HTTPS,
        certificates=[elbv2.ListenerCertificate.from_arn(parameters.certificate_arn.value_as_string)],
        ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
        # Ingress is the AllowedIngressCidr rule of the load balancer's security group, not 0.0.0.0/0.
        open=False,
        default_action=elbv2.ListenerAction.authenticate_oidc(
            issuer=parameters.oidc_issuer.value_as_string,
            authorization_endpoint=parameters.oidc_authorization_endpoint.value_as_string,
            token_endpoint=parameters.oidc_token_endpoint.value_as_string,
            user_info_endpoint=parameters.oidc_user_info_endpoint.value_as_string,
            client_id=parameters.oidc_client_id.value_as_string,
            client_secret=client_secret,
            scope="openid email",
            session_timeout=SESSION_TIMEOUT,
            on_unauthenticated_request=elbv2.UnauthenticatedAction.AUTHENTICATE,
            # The load balancer calls the provider's token and user info endpoints over HTTPS.
            allow_https_outbound=True,
            next=elbv2.ListenerAction.forward([targets]),
        ),
    )
    load_balancer.add_listener(
        "HttpListener",
        port=80,
        protocol=elbv2.ApplicationProtocol.HTTP,
        open=False,
        default_action=elbv2.ListenerAction.redirect(protocol="HTTPS", port=str(HTTPS_PORT), permanent=True),
    )
    return load_balancer
