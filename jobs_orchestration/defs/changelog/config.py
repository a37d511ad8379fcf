"""Run config of `dataset_changelog_job`: what the SQS sensor hands it and what the launchpad shows."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from jobs_orchestration.defs.job_messages import SourceMessage


class ChangelogEventConfig(dg.Config):
    event_type: str = Field(description="The event's type name, e.g. UPDATE_NAME")
    event_detail_json: str = Field(
        default="{}", description='The event detail as a JSON object, e.g. {"oldName": "a", "newName": "b"}'
    )
    timestamp: str | None = Field(
        default=None, description="When it happened (ISO 8601, Java zoned forms accepted); empty means now"
    )


class ChangelogMessageConfig(dg.Config):
    """One DatasetChangelogEventJob message."""

    organization_id: int
    dataset_id: int
    user_id: str = Field(description="Node id of the user who made the change")
    trace_id: str = ""
    job_id: str = Field(default="", description="The producer's job id (empty for a launch from the UI)")
    events: list[ChangelogEventConfig]
    source: SourceMessage | None = Field(
        default=None, description="The job message as received (none for a launch from the UI)"
    )


class ChangelogEventsConfig(dg.Config):
    """Config of the first op of `dataset_changelog_job`: one or more messages in one run."""

    messages: list[ChangelogMessageConfig]


RECORD_CHANGELOG_EVENTS_OP = "record_changelog_events"
"""The op of `dataset_changelog_job` that takes `ChangelogEventsConfig`."""
