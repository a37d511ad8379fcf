"""Every job message ends done or on the dead-letter queue: a member that fails for a reason of its own is
dead-lettered by its run while the others finish, and a run that fails for good gives its messages back,
to be redriven once the cause is fixed. Through the real sensor, jobs, moto server and PostgreSQL."""

from __future__ import annotations

import dagster as dg
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from jobs_orchestration.cli import main
from jobs_orchestration.db.platform import DatasetChangelogEvent
from jobs_orchestration.definitions import defs
from jobs_orchestration.defs.intake.failed_runs import failed_run_messages_sensor
from jobs_orchestration.defs.resources import BoundedS3Resource
from jobs_orchestration.devstack.aws import DATASET_BUCKET
from jobs_orchestration.devstack.stack import free_port
from jobs_orchestration_tests.support import job_messages as m
from jobs_orchestration_tests.support.changelog import (
    DATASET_ID,
    ORGANIZATION_ID,
    USER_NODE_ID,
    seed_platform,
)
from jobs_orchestration_tests.support.platform_data import PlatformData, keys_in, package_state
from jobs_orchestration_tests.support.queue import counts, dead_letters, send, sqs_resource
from jobs_orchestration_tests.support.real_runs import intake_tick, run_request


@pytest.fixture
def data(project_env, platform_db, local_aws) -> PlatformData:
    return PlatformData(platform_db.engine, local_aws.client("s3"))


def _failed_runs_tick(instance: dg.DagsterInstance, local_aws, cursor: str | None) -> dg.SensorResult:
    with dg.build_sensor_context(
        instance=instance, resources={"sqs": sqs_resource(local_aws)}, cursor=cursor
    ) as context:
        return failed_run_messages_sensor(context)


def test_a_refused_member_is_dead_lettered_and_the_others_of_its_batch_finish(
    data, local_aws, platform_db, instance
):
    organization = data.organization()
    dataset = data.dataset(organization)
    doomed = data.package(dataset, organization)
    data.file(doomed, DATASET_BUCKET, "doomed/a.bin")
    # Another organization's package: refused, since the message names the wrong organization.
    other_organization = data.organization()
    kept = data.package(data.dataset(other_organization), other_organization)
    data.file(kept, DATASET_BUCKET, "kept/a.bin")
    poison = m.delete_package(kept, organization, id="poison")
    send(local_aws, m.delete_package(doomed, organization, id="good"), poison)

    (request,) = intake_tick(instance, local_aws).run_requests
    result = run_request(instance, request)

    assert result.success
    assert package_state(platform_db.engine, doomed) == "DELETED"
    assert package_state(platform_db.engine, kept) == "DELETING"
    assert keys_in(local_aws.client("s3"), DATASET_BUCKET) == {"kept/a.bin"}
    (letter,) = dead_letters(local_aws)
    assert letter["body"] == poison
    assert letter["dead_lettered_by"] == "run"
    assert letter["run_id"] == result.run_id
    assert letter["reason"].startswith(f"package_id {kept}: refused: ")
    assert str(organization) in letter["reason"]

    # The run's own record of it keeps the failure sensor from sending it again.
    assert _failed_runs_tick(instance, local_aws, None).asset_events == []


def test_a_changelog_message_naming_no_dataset_is_dead_lettered_and_the_rest_published(
    project_env, platform_db, local_aws, instance
):
    with platform_db.begin() as connection:
        seed_platform(connection)
    poison = m.changelog(404, ORGANIZATION_ID, id="poison", userId=USER_NODE_ID, events=[m.UPDATE_NAME])
    good = m.changelog(DATASET_ID, ORGANIZATION_ID, id="good", userId=USER_NODE_ID, events=[m.UPDATE_NAME])
    send(local_aws, good, poison)

    (request,) = intake_tick(instance, local_aws).run_requests
    result = run_request(instance, request)

    assert result.success
    (letter,) = dead_letters(local_aws)
    assert (letter["body"], letter["dead_lettered_by"]) == (poison, "run")
    assert letter["reason"] == f"refused: datasetId 404 does not exist in organization {ORGANIZATION_ID}"
    with platform_db.begin() as connection:
        stored = connection.execute(
            sa.select(DatasetChangelogEvent.job_id, DatasetChangelogEvent.published_at)
        ).all()
    assert [(job_id, published is not None) for job_id, published in stored] == [("good", True)]


def test_a_run_that_fails_for_good_gives_its_messages_back_and_redrive_replays_them(
    data, local_aws, platform_db, instance
):
    organization = data.organization()
    packages = [data.package(data.dataset(organization), organization) for _ in range(2)]
    for index, package in enumerate(packages):
        data.file(package, DATASET_BUCKET, f"p{index}/a.bin")
    bodies = [m.delete_package(package, organization, id=f"job-{package}") for package in packages]
    send(local_aws, *bodies)
    first = intake_tick(instance, local_aws)
    (request,) = first.run_requests

    # S3 refuses every connection: each attempt fails on a transient error until the retries are spent.
    dead_s3 = BoundedS3Resource(
        endpoint_url=f"http://127.0.0.1:{free_port()}", region_name=local_aws.region, max_attempts=1
    )
    failed = run_request(instance, request, s3=dead_s3)
    assert not failed.success
    # Acknowledges: the messages left the queue with their run, and the cursor remembers their keys.
    acknowledged = intake_tick(instance, local_aws, first.cursor)
    assert counts(local_aws, local_aws.queue_url) == (0, 0)

    result = _failed_runs_tick(instance, local_aws, None)
    assert len(result.asset_events) == 2
    letters = dead_letters(local_aws, keep=True)
    assert sorted(letter["body"] for letter in letters) == sorted(bodies)
    assert {letter["run_id"] for letter in letters} == {failed.run_id}
    assert {letter["dead_lettered_by"] for letter in letters} == {"run_failure"}
    assert all(
        letter["reason"].startswith(f"run {failed.run_id} of delete_package_job failed for good: ")
        for letter in letters
    )
    # Sent once: the next tick finds nothing new.
    assert _failed_runs_tick(instance, local_aws, result.cursor).asset_events == []

    # Redriven once S3 is back.
    redrive = CliRunner().invoke(main, ["dlq", "redrive"], catch_exceptions=False)
    assert "redrove 2 message(s)" in redrive.output
    # The intake that handed them off sees them again: redriven, they are new work, with a run key of
    # their own (the daemon would skip a request whose run key already has a run).
    (replay,) = intake_tick(instance, local_aws, acknowledged.cursor).run_requests
    assert replay.run_key != request.run_key
    assert run_request(instance, replay).success
    assert {package_state(platform_db.engine, package) for package in packages} == {"DELETED"}


def test_a_run_whose_worker_died_after_its_last_retry_gives_its_messages_back(
    data, local_aws, platform_db, instance
):
    organization = data.organization()
    package = data.package(data.dataset(organization), organization)
    body = m.delete_package(package, organization, id="killed")
    send(local_aws, body)
    (request,) = intake_tick(instance, local_aws).run_requests
    job = defs.resolve_job_def(request.job_name)
    # What the code server records when a run worker is killed: the run fails with no step failure;
    # this was its last retry.
    run = instance.create_run_for_job(
        job, run_config=request.run_config, tags={**request.tags, "dagster/will_retry": "false"}
    )
    instance.report_run_failed(run, "run worker process exited unexpectedly (SIGKILL)")

    _failed_runs_tick(instance, local_aws, None)
    (letter,) = dead_letters(local_aws)
    assert letter["body"] == body and letter["run_id"] == run.run_id
    assert "exited unexpectedly" in letter["reason"]


def test_a_failed_run_that_will_be_retried_keeps_its_messages(data, local_aws, instance):
    organization = data.organization()
    send(local_aws, m.delete_package(data.package(data.dataset(organization), organization), organization))
    (request,) = intake_tick(instance, local_aws).run_requests
    run = instance.create_run_for_job(
        defs.resolve_job_def(request.job_name),
        run_config=request.run_config,
        tags={**request.tags, "dagster/will_retry": "true"},
    )
    instance.report_run_failed(run, "worker lost")

    assert _failed_runs_tick(instance, local_aws, None).asset_events == []
    assert dead_letters(local_aws) == []
