"""Driving the real intake and the real jobs in the test process: a tick of `sqs_jobs_sensor`, and a
run request executed as the daemon would (with its run key)."""

from __future__ import annotations

import dagster as dg

from jobs_orchestration.definitions import defs
from jobs_orchestration.defs.intake.definitions import sqs_jobs_sensor
from jobs_orchestration.devstack.aws import LocalAws
from jobs_orchestration_tests.support.queue import sqs_resource
from jobs_orchestration_tests.support.retries import with_compressed_retries


def intake_tick(
    instance: dg.DagsterInstance, local_aws: LocalAws, cursor: str | None = None
) -> dg.SensorResult:
    with dg.build_sensor_context(
        instance_ref=instance.get_ref(),
        resources={"sqs": sqs_resource(local_aws)},
        definitions=defs,
        cursor=cursor,
    ) as context:
        return sqs_jobs_sensor(context)


def run_request(
    instance: dg.DagsterInstance, request: dg.RunRequest, **resources
) -> dg.ExecuteInProcessResult:
    """The request's job, run with its config and tags; `resources` replace the job's own (with the
    retries' waits compressed)."""
    job = defs.resolve_job_def(request.job_name)
    if resources:
        job = with_compressed_retries(job)
    return job.execute_in_process(
        run_config=request.run_config,
        instance=instance,
        tags={**request.tags, "dagster/run_key": request.run_key},
        resources=resources or None,
        raise_on_error=False,
    )
