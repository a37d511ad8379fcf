"""The resources every domain shares, configured from environment variables resolved at run time."""

from __future__ import annotations

import os

import dagster as dg

from jobs_orchestration import settings
from jobs_orchestration.defs.resources import (
    AlertsResource,
    BoundedS3Resource,
    EmailParserDatabase,
    PlatformDatabase,
    SnapshotStoreResource,
    SNSResource,
    SQSResource,
)


def resources_from_environment() -> dict[str, dg.ConfigurableResource]:
    region = dg.EnvVar(settings.AWS_REGION)
    return {
        "platform_db": PlatformDatabase(url=dg.EnvVar(settings.JOBS_DATABASE_URL)),
        "email_parser_db": EmailParserDatabase(url=dg.EnvVar(settings.email_parser_url_variable())),
        "sqs": SQSResource(
            queue_url=dg.EnvVar(settings.JOBS_QUEUE_URL),
            dead_letter_queue_url=dg.EnvVar(settings.JOBS_DEAD_LETTER_QUEUE_URL),
            region_name=region,
        ),
        "sns": SNSResource(topic_arn=dg.EnvVar(settings.CHANGELOG_TOPIC_ARN), region_name=region),
        "s3": BoundedS3Resource(region_name=region),
        "snapshot_store": SnapshotStoreResource(
            url=dg.EnvVar(settings.SNAPSHOT_STORAGE_URL), region_name=region
        ),
        "alerts": AlertsResource(
            topic_arn=optional_variable(settings.ALERTS_TOPIC_ARN, ""),
            webserver_url=optional_variable(settings.DAGSTER_WEBSERVER_URL, settings.DEFAULT_WEBSERVER_URL),
            region_name=region,
        ),
    }


def optional_variable(variable: str, default: str) -> dg.EnvVar | str:
    """The variable when it is set, else the default. Whether it is set is decided when the code location
    loads; its value is still read when a run or a tick starts, as for every other variable."""
    return dg.EnvVar(variable) if os.environ.get(variable) else default


defs = dg.Definitions(resources=resources_from_environment())
