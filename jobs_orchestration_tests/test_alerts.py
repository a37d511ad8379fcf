"""A failed run reaches the operators: `run_failure_alert_sensor` publishes it to the alerts topic, and
a queue subscribed to the topic (as an operator's e-mail or chat integration would be) receives it.
The real sensor, a real failed run of a deletion job, the moto server and PostgreSQL."""

from __future__ import annotations

import logging

import dagster as dg
import pytest

from jobs_orchestration.alerts import MAX_SUBJECT_CHARS, Alert, subject_line
from jobs_orchestration.defs.alerts.definitions import run_failure_alert_sensor
from jobs_orchestration.defs.deletion.config import DELETE_PACKAGES_OP
from jobs_orchestration_tests.support.alerts import WEBSERVER_URL, AlertSubscriber, alerts_resource


def _tick(instance, local_aws, cursor=None, log_handler=None, **alerts_options):
    with dg.build_sensor_context(
        instance=instance, resources={"alerts": alerts_resource(local_aws, **alerts_options)}, cursor=cursor
    ) as context:
        if log_handler is not None:
            context.log.addHandler(log_handler)
        return run_failure_alert_sensor.evaluate_tick(context)


def _failed_deletion(instance, organization_id: int) -> dg.ExecuteInProcessResult:
    # Imported late: the definitions read their environment variables when a run starts.
    from jobs_orchestration.definitions import defs

    result = defs.resolve_job_def("delete_package_job").execute_in_process(
        run_config={
            "ops": {
                DELETE_PACKAGES_OP: {
                    "config": {"requests": [{"package_id": 987654, "organization_id": organization_id}]}
                }
            }
        },
        instance=instance,
        tags={"organization_id": str(organization_id)},
        raise_on_error=False,
    )
    assert not result.success
    return result


@pytest.fixture
def ready(project_env, platform_db, instance):
    """The sensor's first tick only marks where it starts: runs that failed before it are not alerted."""
    return _tick(instance, project_env).cursor


def test_a_failed_run_is_published_with_its_job_run_organization_error_and_link(project_env, instance, ready):
    subscriber = AlertSubscriber(project_env)
    failed = _failed_deletion(instance, 7)

    result = _tick(instance, project_env, ready)

    assert [reaction.error for reaction in result.dagster_run_reactions] == [None]
    (alert,) = subscriber.alerts()
    assert alert.subject == "[jobs-orchestration] delete_package_job failed (organization 7)"
    assert alert.attributes == {
        "alert_kind": "run_failure",
        "job_name": "delete_package_job",
        "run_id": failed.run_id,
        "organization_id": "7",
    }
    lines = alert.text.splitlines()
    assert "Job: delete_package_job" in lines
    assert f"Run id: {failed.run_id}" in lines
    assert "Organization: 7" in lines
    assert f"Run: {WEBSERVER_URL}/runs/{failed.run_id}" in lines
    (error,) = [line for line in lines if line.startswith("Error: ")]
    assert "package_id 987654 not found" in error
    # Alerted once: the next tick has nothing new.
    assert not _tick(instance, project_env, result.cursor).dagster_run_reactions
    assert subscriber.alerts() == []


def test_without_an_alerts_topic_a_failed_run_is_logged_and_not_sent(project_env, instance, ready, caplog):
    subscriber = AlertSubscriber(project_env)
    _failed_deletion(instance, 8)

    with caplog.at_level(logging.WARNING):
        _tick(instance, project_env, ready, log_handler=caplog.handler, topic=False)

    assert subscriber.alerts() == []
    assert "alert not sent (ALERTS_TOPIC_ARN is not set)" in caplog.text
    assert "delete_package_job failed (organization 8)" in caplog.text


def test_an_alert_the_topic_refuses_fails_the_evaluation_visibly(project_env, instance, ready):
    project_env.client("sns").delete_topic(TopicArn=project_env.alerts_topic_arn)
    _failed_deletion(instance, 9)

    result = _tick(instance, project_env, ready)

    (reaction,) = result.dagster_run_reactions
    assert reaction.error is not None
    assert "NotFound" in str(reaction.error)


def test_a_subject_sns_accepts_whatever_the_job_and_organization():
    alert = Alert("run_failure", "x" * 300 + "\nnext line é", "text")
    subject = subject_line(alert)
    assert len(subject) == MAX_SUBJECT_CHARS
    assert subject.isascii() and "\n" not in subject
