"""The code location: every domain's definitions merged with the shared resources."""

import dagster as dg

from jobs_orchestration.defs.alerts import definitions as alerts
from jobs_orchestration.defs.changelog import definitions as changelog
from jobs_orchestration.defs.deletion import definitions as deletion
from jobs_orchestration.defs.intake import definitions as intake
from jobs_orchestration.defs.resources import definitions as resources
from jobs_orchestration.defs.snapshots import definitions as snapshots
from jobs_orchestration.defs.storage import definitions as storage

# Every job here holds a few small ops that run one after another: the multiprocess executor would add
# a Python start-up (seconds on a small machine) per op to every run, including the storage refreshes
# an operator materializes from the UI, and gain no parallelism. Op retry policies and pools still apply.
defs = dg.Definitions.merge(
    dg.Definitions(executor=dg.in_process_executor),
    resources.defs,
    alerts.defs,
    changelog.defs,
    deletion.defs,
    intake.defs,
    snapshots.defs,
    storage.defs,
)
