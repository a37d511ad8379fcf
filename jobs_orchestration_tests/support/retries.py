"""Jobs whose retry schedule is compressed in time, for tests that need every retry used up."""

from __future__ import annotations

import dagster as dg


def with_compressed_retries(job: dg.JobDefinition, delay_seconds: float = 0.05) -> dg.JobDefinition:
    """The same ops, resources and tags, and the same number of retries with the same backoff, waiting
    a fraction of the time between attempts."""
    policy = job.op_retry_policy
    assert policy is not None, f"{job.name} has no retry policy"
    compressed = dg.RetryPolicy(
        max_retries=policy.max_retries, delay=delay_seconds, backoff=policy.backoff, jitter=policy.jitter
    )
    # Resources bound to the job (by Definitions) come along; a bare job gets them at execution.
    bound = {key: resource for key, resource in job.resource_defs.items() if key != "io_manager"}
    return job.graph.to_job(
        name=job.name, tags=job.tags, resource_defs=bound or None, op_retry_policy=compressed
    )


def retries_of(result: dg.ExecuteInProcessResult) -> int:
    """How many times a step of the run was put up for retry."""
    return sum(1 for event in result.all_events if event.event_type_value == "STEP_UP_FOR_RETRY")
