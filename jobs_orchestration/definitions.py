"""The code location: every domain's definitions merged with the shared resources."""

import dagster as dg

from jobs_orchestration.defs import resources

defs = dg.Definitions.merge(
    resources.defs,
)
