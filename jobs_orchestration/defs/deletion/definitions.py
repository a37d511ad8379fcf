"""The deletion domain: its two jobs and its settings resource."""

import dagster as dg

from jobs_orchestration import settings
from jobs_orchestration.defs.deletion.jobs import delete_dataset_job, delete_package_job
from jobs_orchestration.defs.deletion.resources import DeletionSettings

defs = dg.Definitions(
    jobs=[delete_package_job, delete_dataset_job],
    resources={"deletion": DeletionSettings(timeseries_bucket=dg.EnvVar(settings.TIMESERIES_BUCKET))},
)
