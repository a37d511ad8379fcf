import datetime as dt
import json

import dagster as dg
import sqlalchemy as sa
from botocore.exceptions import EndpointConnectionError

from jobs_orchestration.db.platform import DatasetChangelogEvent as Event
from jobs_orchestration.definitions import defs
from jobs_orchestration.defs.changelog.config import RECORD_CHANGELOG_EVENTS_OP
from jobs_orchestration.defs.changelog.sensors import changelog_outbox_sensor
from jobs_orchestration.defs.resources import SNSResource
from jobs_orchestration_tests.support.changelog import DATASET_ID, ORGANIZATION_ID, USER_NODE_ID
from jobs_orchestration_tests.support.retries import retries_of, with_compressed_retries


class SNSDuringAnOutage(SNSResource):
    """The real client, with PublishBatch failing as it does when SNS is unreachable."""

    def get_client(self):
        client = super().get_client()

        def outage(**request):
            raise EndpointConnectionError(endpoint_url="https://sns.unreachable")

        client.publish_batch = outage
        return client


def run_config(*messages: dict) -> dict:
    return {"ops": {RECORD_CHANGELOG_EVENTS_OP: {"config": {"messages": list(messages)}}}}


def changelog_message(job_id: str, dataset_id: int = DATASET_ID) -> dict:
    return {
        "organization_id": ORGANIZATION_ID,
        "dataset_id": dataset_id,
        "user_id": USER_NODE_ID,
        "trace_id": "trace-9",
        "job_id": job_id,
        "events": [
            {"event_type": "ADD_TAG", "event_detail_json": json.dumps({"name": "mri"}), "timestamp": None},
            {
                "event_type": "UPDATE_NAME",
                "event_detail_json": json.dumps({"oldName": "a", "newName": "b"}),
                "timestamp": "2021-06-01T14:00+02:00[Europe/Paris]",
            },
        ],
    }


def rows(db):
    with db.begin() as connection:
        return connection.execute(sa.select(Event).order_by(Event.id)).all()


def test_the_job_records_and_publishes_a_batch_and_is_tagged_changelog(
    project_env, seeded_db, subscriber, instance
):
    job = defs.resolve_job_def("dataset_changelog_job")
    result = job.execute_in_process(
        run_config=run_config(changelog_message("job-1"), changelog_message("job-2")), instance=instance
    )

    assert result.success
    assert result.dagster_run.tags["job_family"] == "changelog"
    assert len(rows(seeded_db)) == 4 and all(row.published_at for row in rows(seeded_db))
    assert len(subscriber.drain()) == 4


def test_a_refused_message_fails_the_run_after_the_others_are_recorded(
    project_env, seeded_db, subscriber, instance
):
    job = defs.resolve_job_def("dataset_changelog_job")
    result = job.execute_in_process(
        run_config=run_config(changelog_message("job-good"), changelog_message("job-bad", dataset_id=404)),
        instance=instance,
        raise_on_error=False,
    )

    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    assert "1 changelog message(s) refused" in failure.step_failure_data.error.message
    assert {row.job_id for row in rows(seeded_db)} == {"job-good"}
    assert len(subscriber.drain()) == 2


def test_the_outbox_sensor_sweeps_rows_left_unpublished(project_env, seeded_db, subscriber, instance):
    job = with_compressed_retries(defs.resolve_job_def("dataset_changelog_job"))
    result = job.execute_in_process(
        run_config=run_config(changelog_message("job-1")),
        instance=instance,
        resources={"sns": SNSDuringAnOutage(topic_arn=project_env.topic_arn)},
        raise_on_error=False,
    )
    assert not result.success
    assert retries_of(result) == job.op_retry_policy.max_retries
    assert [row.published_at for row in rows(seeded_db)] == [None, None]

    with dg.build_sensor_context(instance=instance, resources={"platform_db": seeded_db}) as context:
        assert isinstance(changelog_outbox_sensor(context), dg.SkipReason)  # younger than a minute

        with seeded_db.begin() as connection:
            five_minutes_ago = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
            connection.execute(sa.update(Event).values(recorded_at=five_minutes_ago))
        request = changelog_outbox_sensor(context)
        assert isinstance(request, dg.RunRequest)
        sweep = defs.resolve_job_def("changelog_outbox_job").execute_in_process(
            run_config=request.run_config, instance=instance, tags=request.tags
        )

        assert sweep.success and sweep.dagster_run.tags["job_family"] == "changelog"
        assert all(row.published_at for row in rows(seeded_db))
        assert len(subscriber.drain()) == 2
        assert isinstance(changelog_outbox_sensor(context), dg.SkipReason)


def test_the_launchpad_example_config_is_valid(project_env):
    job = defs.resolve_job_def("dataset_changelog_job")
    resolved = dg.validate_run_config(job, {})
    [example] = resolved["ops"][RECORD_CHANGELOG_EVENTS_OP]["config"]["messages"]
    assert example["events"][0]["event_type"] == "UPDATE_NAME"
