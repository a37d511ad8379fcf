"""The retry schedule of every job (each calls S3, SNS or PostgreSQL), so an outage of about a minute
ends in a successful run instead of a failed one, and a permanent error ends it at once.

Each attempt meets an outage within seconds (the clients' bounded timeouts and short retries, see
`jobs_orchestration.connectivity`) and fails; the step then waits about 2, 6, 14 and 30 seconds (each
give or take 2 s, so runs that failed together do not come back together) before trying again. An
outage longer than that fails the run visibly. An error that no retry can get past (see
`jobs_orchestration.failures`: a data error, access denied, a missing bucket) fails the step at once,
through `retry_only_transient_errors`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from jobs_orchestration.failures import describe, is_transient

OUTAGE_RETRY_POLICY = dg.RetryPolicy(
    max_retries=4, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)

# A run whose worker died after its last step succeeded has no failed step, and Dagster's default
# retry (from the failure) then starts nothing and the run stays failed. Rerunning every step is safe
# for the message jobs: deletions resume from their rows, changelog events are recorded by stable id
# and only unpublished ones are sent.
RETRY_WHOLE_RUN_TAGS = {"dagster/retry_strategy": "ALL_STEPS"}


@contextmanager
def retry_only_transient_errors() -> Iterator[None]:
    """Let a transient error reach the retry policy; turn any other into a failure that is not retried."""
    try:
        yield
    except (dg.Failure, dg.RetryRequested):
        raise
    except Exception as error:
        if is_transient(error):
            raise
        raise dg.Failure(
            description=f"{describe(error)} (a permanent error: not retried)", allow_retries=False
        ) from error
