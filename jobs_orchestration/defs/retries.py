"""The retry schedule of every job (each calls S3, SNS or PostgreSQL), so an outage of about a minute
ends in a successful run instead of a failed one.

Each attempt meets an outage within seconds (the clients' bounded timeouts and short retries, see
`jobs_orchestration.connectivity`) and fails; the step then waits about 2, 6, 14 and 30 seconds (each
give or take 2 s, so runs that failed together do not come back together) before trying again. An
outage longer than that fails the run visibly: permanent failures (a refusal, a bad message) raise
`dg.Failure(allow_retries=False)` and are not retried at all.
"""

from __future__ import annotations

import dagster as dg

OUTAGE_RETRY_POLICY = dg.RetryPolicy(
    max_retries=4, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)

# A run whose worker died after its last step succeeded has no failed step, and Dagster's default
# retry (from the failure) then starts nothing and the run stays failed. Rerunning every step is safe
# for the message jobs: deletions resume from their rows, changelog events are recorded by stable id
# and only unpublished ones are sent.
RETRY_WHOLE_RUN_TAGS = {"dagster/retry_strategy": "ALL_STEPS"}
