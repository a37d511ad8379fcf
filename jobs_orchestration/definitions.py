"""The code location: every domain's definitions merged with the shared resources."""

import dagster as dg

from jobs_orchestration.defs import resources
from jobs_orchestration.defs.snapshots import definitions as snapshots

defs = dg.Definitions.merge(
    resources.defs,
    snapshots.defs,
)
