"""The whole system as deployed: job messages put on the queue with the command line go through the
real daemon (sensor, run queue, run workers) and change PostgreSQL and S3 as they should, and an
operator's script sees every run succeed through the webserver's GraphQL API."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from jobs_orchestration.changelog.record import event_id_for
from jobs_orchestration_tests.support.changelog import TopicSubscriber
from jobs_orchestration_tests.support.running_system import RunningSystem
from jobs_orchestration_tests.support.system_workload import build_workload, effects_missing

COMPLETION_TIMEOUT_SECONDS = 420
"""Ample on an idle machine (about a minute of runs); the bound is for a busy one."""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_messages_sent_with_the_cli_complete_through_the_daemon(tmp_path) -> None:
    with RunningSystem(tmp_path) as system:
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
