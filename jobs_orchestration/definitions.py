"""The code location: every domain's definitions merged with the shared resources."""

import dagster as dg

from jobs_orchestration.defs import resources
from jobs_orchestration.defs.changelog.definitions import defs as changelog_defs

defs = dg.Definitions.merge(
    resources.defs,
    changelog_defs,
)
