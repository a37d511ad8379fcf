"""The deletion jobs, started by `sqs_jobs_sensor` (package deletions batched per organization, a
dataset per run) or from the launchpad.

A failed attempt is retried on the outage schedule when it failed for a reason that may pass (the ops
raise `dg.Failure(allow_retries=False)` otherwise); a retry deletes just what the rows say is left."""

from __future__ import annotations

import dagster as dg

from jobs_orchestration.defs.deletion.ops import delete_dataset_op, delete_packages
from jobs_orchestration.defs.retries import OUTAGE_RETRY_POLICY, RETRY_WHOLE_RUN_TAGS

DELETION_TAGS = {"job_family": "deletion", **RETRY_WHOLE_RUN_TAGS}

# No default config: the launchpad starts empty, so a launch names its ids (see config.py) instead of
# starting from example ones.


@dg.job(
    tags=DELETION_TAGS,
    op_retry_policy=OUTAGE_RETRY_POLICY,
    description="Delete DELETING packages with all their descendants: S3 objects (every version), "
    "time-series data, rows. Set dry_run to see what would go.",
)
def delete_package_job() -> None:
    delete_packages()


@dg.job(
    tags=DELETION_TAGS,
    op_retry_policy=OUTAGE_RETRY_POLICY,
    description="Delete a DELETING dataset: its banner and readme, all its packages, then its rows. "
    "Set dry_run to see what would go.",
)
def delete_dataset_job() -> None:
    delete_dataset_op()
