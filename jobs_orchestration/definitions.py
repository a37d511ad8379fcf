"""The code location: every domain's definitions merged with the shared resources."""

import dagster as dg

from jobs_orchestration.defs import resources
from jobs_orchestration.defs.changelog import definitions as changelog
from jobs_orchestration.defs.deletion import definitions as deletion
from jobs_orchestration.defs.intake import definitions as intake
from jobs_orchestration.defs.snapshots import definitions as snapshots
from jobs_orchestration.defs.storage import definitions as storage

defs = dg.Definitions.merge(
    resources.defs,
    changelog.defs,
    deletion.defs,
    intake.defs,
    snapshots.defs,
    storage.defs,
)
