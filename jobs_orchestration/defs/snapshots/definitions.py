import dagster as dg

from jobs_orchestration.defs.snapshots.assets import snapshot_cleanup
from jobs_orchestration.defs.snapshots.schedules import nightly_snapshot_cleanup, snapshot_cleanup_job

defs = dg.Definitions(
    assets=[snapshot_cleanup],
    jobs=[snapshot_cleanup_job],
    schedules=[nightly_snapshot_cleanup],
)
