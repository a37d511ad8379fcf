"""Alerts as the operators receive them: an SQS queue subscribed to the local alerts topic."""

from __future__ import annotations

from dataclasses import dataclass

from jobs_orchestration.defs.resources import AlertsResource
from jobs_orchestration.devstack.aws import LocalAws
from jobs_orchestration_tests.support.changelog import TopicSubscriber

WEBSERVER_URL = "http://dagster.example:3000"


def alerts_resource(aws: LocalAws, *, topic: bool = True) -> AlertsResource:
    """The project's alerts resource on the moto server; without a topic, alerts are only logged."""
    return AlertsResource(
        topic_arn=aws.alerts_topic_arn if topic else "",
        webserver_url=WEBSERVER_URL,
        endpoint_url=aws.endpoint_url,
        region_name=aws.region,
    )


@dataclass(frozen=True)
class ReceivedAlert:
    subject: str
    text: str
    attributes: dict[str, str]


class AlertSubscriber(TopicSubscriber):
    def __init__(self, aws: LocalAws) -> None:
        super().__init__(aws, name="alerts-subscriber", topic_arn=aws.alerts_topic_arn)

    def alerts(self) -> list[ReceivedAlert]:
        """Every alert waiting (taken off the queue)."""
        return [
            ReceivedAlert(
                subject=envelope.get("Subject", ""),
                text=envelope["Message"],
                attributes={
                    name: value["Value"] for name, value in envelope.get("MessageAttributes", {}).items()
                },
            )
            for envelope in self.envelopes()
        ]
