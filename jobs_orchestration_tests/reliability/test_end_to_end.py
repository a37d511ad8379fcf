"""The whole system as deployed: job messages put on the queue with the command line go through the
real daemon (sensor, run queue, run workers) and change PostgreSQL and S3 as they should, and an
operator's script sees every run succeed through the webserver's GraphQL API; a run worker killed in
the middle of its step is retried as a whole run that finishes the work. The system is started once
for the module (about half a minute to start and stop)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from jobs_orchestration.changelog.record import event_id_for
from jobs_orchestration.db.platform import DatasetState, File, JobAuditLog, PackageState
from jobs_orchestration.devstack.aws import DATASET_BUCKET
from jobs_orchestration_tests.support.changelog import TopicSubscriber
from jobs_orchestration_tests.support.platform_data import PlatformData, count_rows, keys_in, package_state
from jobs_orchestration_tests.support.running_system import RunningSystem
from jobs_orchestration_tests.support.system_workload import Workload, build_workload, effects_missing

COMPLETION_TIMEOUT_SECONDS = 420
"""Ample on an idle machine (about a minute of runs); the bound is for a busy one."""


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSystem]:
    with RunningSystem(tmp_path_factory.mktemp("system")) as running:
        yield running


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_messages_sent_with_the_cli_complete_through_the_daemon(system: RunningSystem) -> None:
    s3 = system.aws.client("s3")
    subscriber = TopicSubscriber(system.aws, name="changelog-e2e-subscriber")
    workload = build_workload(system.engine, s3, tag="e2e")

    with ThreadPoolExecutor(4) as pool:
        message_ids = list(pool.map(lambda arguments: system.enqueue(*arguments), workload.messages))
    assert len(set(message_ids)) == len(workload.messages)

    system.wait_until_done(workload.job_ids, COMPLETION_TIMEOUT_SECONDS)

    assert effects_missing(system.engine, s3, workload) == []
    published = [delivery.attributes["eventId"] for delivery in subscriber.drain()]
    assert sorted(published) == sorted(event_id_for(job_id, 0) for job_id in workload.changelog_job_ids)
    assert system.dead_letter_count() == 0

    runs = [run for run in system.runs() if run.producer_job_ids & workload.job_ids]
    assert {run.status for run in runs} == {"SUCCESS"}
    by_job = {run.job_name for run in runs}
    assert by_job == {"delete_package_job", "delete_dataset_job", "dataset_changelog_job"}
    carried = [job_id for run in runs for job_id in run.producer_job_ids]
    assert sorted(carried) == sorted(workload.job_ids), "each message became exactly one run"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_run_worker_killed_in_its_step_is_retried_as_a_whole_run(system: RunningSystem) -> None:
    """A package deletion's run worker is killed (SIGKILL) once its step has deleted the package's
    objects and waits to remove their rows (the test holds those rows locked): mid-work, inside the
    window between the objects and their rows. The crashed run fails, the run retries start it again
    as a whole run, and that run finishes the deletion."""
    s3 = system.aws.client("s3")
    data = PlatformData(system.engine, s3)
    workload = Workload()
    organization = data.organization()
    dataset = data.dataset(organization, state=DatasetState.READY)
    doomed = data.package(dataset, organization)
    for index in range(3):
        data.file(doomed, DATASET_BUCKET, f"worker-kill/doomed/{index}.bin")
    workload.deleted_objects = set(data.objects)
    kept = data.package(dataset, organization, state=PackageState.READY)
    for index in range(2):
        data.file(kept, DATASET_BUCKET, f"worker-kill/kept/{index}.bin")
    workload.kept_objects = set(data.objects) - workload.deleted_objects
    workload.deleted_packages, workload.kept_packages, workload.kept_datasets = [doomed], [kept], [dataset]
    job_id = workload.add(
        "delete-package",
        "--package-id",
        str(doomed),
        "--organization-id",
        str(organization),
        "--user-id",
        "N:user:k",
    )
    workload.deletion_job_ids = {job_id}

    def objects_gone() -> bool:
        return not workload.deleted_objects & {(DATASET_BUCKET, key) for key in keys_in(s3, DATASET_BUCKET)}

    with system.engine.connect() as holder, system.instance() as instance:
        holder.execute(sa.select(File.id).where(File.package_id == doomed).with_for_update())
        system.enqueue(*workload.messages[0])
        step_started = functools.partial(system.run_with_step_started, instance, "delete_package_job", job_id)
        killed_run = system.wait_for("the deletion step started", step_started, 300, interval=0.2)
        system.wait_for("the step deleted the objects", objects_gone, 120, interval=0.2)
        system.expected_failures.add(killed_run)
        assert system.kill_run_worker(instance, killed_run)
        assert count_rows(system.engine, File, File.package_id == doomed) == 3, (
            "the rows naming them are left"
        )
        assert package_state(system.engine, doomed) == "DELETING"
        holder.rollback()

    system.wait_until_done({job_id}, COMPLETION_TIMEOUT_SECONDS, failures_expected=True)

    runs = {run.run_id: run for run in system.runs("delete_package_job") if job_id in run.producer_job_ids}
    assert runs[killed_run].status == "FAILURE"
    [retry] = [run for run in runs.values() if run.run_id != killed_run]
    assert retry.status == "SUCCESS"
    assert retry.tags["dagster/parent_run_id"] == retry.tags["dagster/root_run_id"] == killed_run
    assert retry.tags["dagster/retry_strategy"] == "ALL_STEPS"
    with system.instance() as instance:
        assert instance.get_run_by_id(retry.run_id).step_keys_to_execute is None, "every step, not a resume"
    assert effects_missing(system.engine, s3, workload) == []
    with system.engine.connect() as connection:
        audited = connection.execute(
            sa.select(JobAuditLog.dagster_run_id, JobAuditLog.outcome).where(JobAuditLog.job_id == job_id)
        ).all()
    assert [tuple(row) for row in audited] == [(retry.run_id, "deleted")]
    assert system.queue_counts() == (0, 0)
    assert system.dead_letter_count() == 0
