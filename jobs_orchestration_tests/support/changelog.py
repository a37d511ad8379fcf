"""Test data for the changelog: platform rows, a sample detail of every event type, and an SQS queue
subscribed to the changelog topic (raw message delivery off, as a real subscriber would have it)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from jobs_orchestration.changelog.events import EVENT_TYPES
from jobs_orchestration.db.platform import Dataset, Organization, User
from jobs_orchestration.devstack.aws import LocalAws

ORGANIZATION_ID = 7
OTHER_ORGANIZATION_ID = 8
DATASET_ID = 13
OTHER_ORGANIZATION_DATASET_ID = 99
USER_NODE_ID = "N:user:3c1f0000-0000-0000-0000-000000000001"

_PARENT = {"id": 5, "nodeId": "N:collection:1", "name": "folder"}
_STATUS = {"id": 1, "name": "NO_STATUS", "displayName": "No Status"}
_PUBLICATION_STATUS = {"publicationStatusId": 21}
_MODEL_ID = "0b8e2a6c-94c4-4a5e-9a51-1b8a0f2f0c11"
_RECORD_ID = "5d7c1e2a-3b4f-4c6d-8e9f-0a1b2c3d4e5f"

SAMPLE_DETAILS: dict[str, dict[str, Any]] = {
    "CREATE_DATASET": {},
    "UPDATE_METADATA": {},
    "UPDATE_NAME": {"oldName": "a", "newName": "b"},
    "UPDATE_DESCRIPTION": {"oldDescription": None, "newDescription": "about"},
    "UPDATE_LICENSE": {"oldLicense": "MIT", "newLicense": "Creative Commons Attribution"},
    "ADD_TAG": {"name": "brain"},
    "REMOVE_TAG": {"name": "brain"},
    "UPDATE_README": {"oldReadme": "", "newReadme": "# Readme"},
    "UPDATE_BANNER_IMAGE": {"oldBanner": None, "newBanner": "banner.png"},
    "ADD_COLLECTION": {"id": 3, "name": "Atlas"},
    "REMOVE_COLLECTION": {"id": 3, "name": "Atlas"},
    "ADD_CONTRIBUTOR": {
        "id": 9,
        "firstName": "Ada",
        "middleInitial": "B",
        "lastName": "Lovelace",
        "degree": "Ph.D.",
    },
    "REMOVE_CONTRIBUTOR": {
        "id": 9,
        "firstName": "Ada",
        "middleInitial": None,
        "lastName": "Lovelace",
        "degree": None,
    },
    "ADD_EXTERNAL_PUBLICATION": {"doi": "10.1000/xyz", "relationshipType": "IsCitedBy"},
    "REMOVE_EXTERNAL_PUBLICATION": {"doi": "10.1000/xyz", "relationshipType": "IsCitedBy"},
    "UPDATE_IGNORE_FILES": {"totalCount": 4},
    "UPDATE_STATUS": {"oldStatus": _STATUS, "newStatus": {**_STATUS, "id": 2, "name": "READY"}},
    "UPDATE_PERMISSION": {
        "oldRole": None,
        "newRole": "editor",
        "userId": 3,
        "teamId": None,
        "organizationId": None,
    },
    "UPDATE_OWNER": {"oldOwner": 3, "newOwner": 4},
    "CREATE_PACKAGE": {"id": 42, "nodeId": "N:package:1", "name": "scan.nii", "parent": _PARENT},
    "RENAME_PACKAGE": {"id": 42, "nodeId": "N:package:1", "oldName": "a", "newName": "b", "parent": None},
    "MOVE_PACKAGE": {"id": 42, "nodeId": None, "name": "scan.nii", "oldParent": None, "newParent": _PARENT},
    "DELETE_PACKAGE": {"id": 42, "nodeId": "N:package:1", "name": "scan.nii", "parent": None},
    "RESTORE_PACKAGE": {
        "id": 42,
        "nodeId": "N:package:1",
        "name": "scan (1).nii",
        "originalName": "scan.nii",
        "parent": _PARENT,
    },
    "CREATE_MODEL": {"id": _MODEL_ID, "name": "patient"},
    "UPDATE_MODEL": {"id": _MODEL_ID, "name": "patient"},
    "DELETE_MODEL": {"id": _MODEL_ID, "name": "patient"},
    "CREATE_MODEL_PROPERTY": {
        "modelId": _MODEL_ID,
        "modelName": "patient",
        "propertyName": "age",
    },
    "UPDATE_MODEL_PROPERTY": {
        "modelId": _MODEL_ID,
        "modelName": "patient",
        "propertyName": "age",
    },
    "DELETE_MODEL_PROPERTY": {
        "modelId": _MODEL_ID,
        "modelName": "patient",
        "propertyName": "age",
    },
    "CREATE_RECORD": {"id": _RECORD_ID, "name": "patient 1", "modelId": _MODEL_ID},
    "UPDATE_RECORD": {
        "id": _RECORD_ID,
        "name": None,
        "modelId": _MODEL_ID,
        "properties": [
            {"name": "age", "dataType": {"type": "Long"}, "oldValue": 3, "newValue": 4},
            {"name": "notes", "dataType": None, "oldValue": None, "newValue": ["a", {"b": 1.5}]},
        ],
    },
    "DELETE_RECORD": {"id": _RECORD_ID, "name": None, "modelId": None},
    "CUSTOM_EVENT": {"event_type": "ANNOTATED", "message": "added labels"},
    "UPDATE_CHANGELOG": {"oldChangelog": None, "newChangelog": "## v2\nMore scans"},
}
SAMPLE_DETAILS.update(
    {
        name: _PUBLICATION_STATUS
        for name, (category, _) in EVENT_TYPES.items()
        if category == "PUBLISHING" and name not in SAMPLE_DETAILS
    }
)
assert set(SAMPLE_DETAILS) == set(EVENT_TYPES), "every event type needs a sample"


def seed_platform(connection: sa.Connection) -> None:
    """Two organizations, a user, a dataset in each organization."""
    connection.execute(
        sa.insert(Organization),
        [
            {"id": ORGANIZATION_ID, "node_id": "N:organization:7", "name": "Lab"},
            {"id": OTHER_ORGANIZATION_ID, "node_id": "N:organization:8", "name": "Other lab"},
        ],
    )
    connection.execute(sa.insert(User), [{"id": 1, "node_id": USER_NODE_ID, "email": "ada@example.org"}])
    connection.execute(
        sa.insert(Dataset),
        [
            {
                "id": DATASET_ID,
                "node_id": "N:dataset:13",
                "organization_id": ORGANIZATION_ID,
                "name": "Scans",
            },
            {
                "id": OTHER_ORGANIZATION_DATASET_ID,
                "node_id": "N:dataset:99",
                "organization_id": OTHER_ORGANIZATION_ID,
                "name": "Elsewhere",
            },
        ],
    )


@dataclass(frozen=True)
class Delivery:
    """One SNS notification as a subscribed SQS queue receives it."""

    body: dict[str, Any]
    raw_body: str
    attributes: dict[str, str]


class TopicSubscriber:
    """An SQS queue subscribed to the changelog topic (or to `topic_arn`)."""

    def __init__(
        self, aws: LocalAws, name: str = "changelog-subscriber", topic_arn: str | None = None
    ) -> None:
        self.sqs = aws.client("sqs")
        self.queue_url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        aws.client("sns").subscribe(
            TopicArn=topic_arn or aws.topic_arn,
            Protocol="sqs",
            Endpoint=queue_arn,
            Attributes={"RawMessageDelivery": "false"},
        )

    def drain(self) -> list[Delivery]:
        """Every notification waiting in the queue (deleted as read)."""
        return [
            Delivery(
                body=json.loads(envelope["Message"]),
                raw_body=envelope["Message"],
                attributes={
                    name: value["Value"] for name, value in envelope.get("MessageAttributes", {}).items()
                },
            )
            for envelope in self.envelopes()
        ]

    def envelopes(self) -> list[dict[str, Any]]:
        """Every SNS envelope waiting in the queue (deleted as read): `Subject`, `Message`, ..."""
        envelopes = []
        while True:
            response = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            )
            messages = response.get("Messages", [])
            if not messages:
                return envelopes
            envelopes.extend(json.loads(message["Body"]) for message in messages)
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                    for index, message in enumerate(messages)
                ],
            )
