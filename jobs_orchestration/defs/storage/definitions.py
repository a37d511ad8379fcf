"""The storage domain: cache assets per organization, the jobs, sensors, schedule and checks."""

import dagster as dg

from jobs_orchestration.defs.storage.assets import storage_assets
from jobs_orchestration.defs.storage.checks import storage_checks
from jobs_orchestration.defs.storage.jobs import (
    nightly_storage_totals,
    storage_refresh_job,
    storage_totals_job,
)
from jobs_orchestration.defs.storage.sensors import (
    organizations_sensor,
    storage_refresh_after_deletion_sensor,
)

defs = dg.Definitions(
    assets=storage_assets,
    asset_checks=storage_checks,
    jobs=[storage_refresh_job, storage_totals_job],
    schedules=[nightly_storage_totals],
    sensors=[organizations_sensor, storage_refresh_after_deletion_sensor],
)
