"""The sensor as deployed: every routed request is valid run config for the real job it names."""

import dagster as dg

from jobs_orchestration.definitions import defs
from jobs_orchestration.defs.intake.definitions import sqs_jobs_sensor
from jobs_orchestration_tests.support import job_messages as m
from jobs_orchestration_tests.support.queue import send, sqs_resource


def test_routed_requests_are_valid_for_the_real_jobs(project_env, local_aws, instance):
    send(
        local_aws,
        m.delete_package(42, 7, id="p1"),
        m.delete_dataset(13, 7, id="d1"),
        m.changelog(13, 7, id="c1", events=[m.UPDATE_NAME]),
        m.cache_population(7, dry_run=True, id="s1"),
        m.cache_population(None, id="s2"),
    )
    with dg.build_sensor_context(
        instance_ref=instance.get_ref(), resources={"sqs": sqs_resource(local_aws)}, definitions=defs
    ) as context:
        result = sqs_jobs_sensor(context)

    assert {request.job_name for request in result.run_requests} == m.SQS_FIRED_JOBS
    for request in result.run_requests:
        job = defs.resolve_job_def(request.job_name)
        assert dg.validate_run_config(job, request.run_config), request.job_name
