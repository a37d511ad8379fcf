"""Dataset changelog: the recording job the SQS sensor starts, and the outbox sweep."""

import dagster as dg

from jobs_orchestration.defs.changelog.jobs import changelog_outbox_job, dataset_changelog_job
from jobs_orchestration.defs.changelog.sensors import changelog_outbox_sensor

defs = dg.Definitions(
    jobs=[dataset_changelog_job, changelog_outbox_job],
    sensors=[changelog_outbox_sensor],
)
