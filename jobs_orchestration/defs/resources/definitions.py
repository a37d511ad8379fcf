"""The resources every domain shares, configured from environment variables resolved at run time.

Each takes `dg.EnvVar(name)`, with the names `Settings` reads, so a URL or key never enters the
definitions the UI shows; which optional variables are set is decided from the settings when the code
location loads.
"""

from __future__ import annotations

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
    current = settings.load_settings()
    region = dg.EnvVar(settings.AWS_REGION)
    return {
        "platform_db": PlatformDatabase(url=dg.EnvVar(settings.JOBS_DATABASE_URL)),
        "email_parser_db": EmailParserDatabase(url=dg.EnvVar(current.email_parser_database_variable)),
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
            topic_arn=variable_if_set(current, "alerts_topic_arn", ""),
            webserver_url=variable_if_set(
                current, "dagster_webserver_url", settings.DEFAULTS.dagster_webserver_url
            ),
            region_name=region,
        ),
    }


def variable_if_set(current: settings.Settings, field: str, otherwise: str) -> dg.EnvVar | str:
    """The field's variable when it is set, else `otherwise`. Whether it is set is decided when the code
    location loads; its value is still read when a run or a tick starts, as for every other variable."""
    return dg.EnvVar(settings.variable(field)) if field in current.model_fields_set else otherwise


defs = dg.Definitions(resources=resources_from_environment())
