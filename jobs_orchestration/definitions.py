"""The code location: every domain's definitions merged with the shared resources."""

import dagster as dg

from jobs_orchestration.defs import resources
from jobs_orchestration.defs.storage import definitions as storage

defs = dg.Definitions.merge(
    resources.defs,
    storage.defs,
)
