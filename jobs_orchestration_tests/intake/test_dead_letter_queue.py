"""The dead-letter queue in the UI: observed without being consumed, checked, alerted on, and redriven
from the launchpad through the same code as `jobs-orchestration dlq redrive`. Real sensors and jobs
against the moto server."""

from __future__ import annotations

import json
import logging

import dagster as dg
import pytest
from click.testing import CliRunner

from jobs_orchestration.cli import main
from jobs_orchestration.defs.intake.dead_letter_queue import (
    CHECK_NAME,
    dead_letter_queue_is_empty,
    dead_letter_queue_sensor,
)
from jobs_orchestration.defs.intake.redrive import REDRIVE_OP, redrive_dead_letters_job
from jobs_orchestration_tests.support import job_messages as m
from jobs_orchestration_tests.support.alerts import AlertSubscriber, alerts_resource
from jobs_orchestration_tests.support.queue import counts, dead_letters, send, sqs_resource

NOT_JSON = "body is not JSON"


def _observe(instance, local_aws, cursor=None, log_handler=None, **alerts_options) -> dg.SensorResult:
    resources = {"sqs": sqs_resource(local_aws), "alerts": alerts_resource(local_aws, **alerts_options)}
    with dg.build_sensor_context(instance=instance, resources=resources, cursor=cursor) as context:
        if log_handler is not None:
            context.log.addHandler(log_handler)
        return dead_letter_queue_sensor(context)


def _events(result: dg.SensorResult) -> tuple[dg.AssetObservation, dg.AssetCheckEvaluation]:
    observation, evaluation = result.asset_events
    assert isinstance(observation, dg.AssetObservation) and isinstance(evaluation, dg.AssetCheckEvaluation)
    return observation, evaluation


def _redrive(instance, local_aws, **config) -> dg.ExecuteInProcessResult:
    return redrive_dead_letters_job.execute_in_process(
        run_config={"ops": {REDRIVE_OP: {"config": config}}},
        resources={"sqs": sqs_resource(local_aws)},
        instance=instance,
        raise_on_error=False,
    )


def test_a_tick_that_dead_letters_is_observed_with_its_reason_and_fails_the_check_until_the_queue_is_empty(
    local_aws, tick, instance
):
    send(local_aws, "not json", "{also not json")
    intake = tick()
    assert intake.skip_reason.skip_message == "2 message(s) dead-lettered (2 × body is not JSON)"

    observed = _observe(instance, local_aws)

    observation, evaluation = _events(observed)
    assert observation.asset_key == dg.AssetKey("dead_letter_queue")
    assert observation.metadata["depth"] == dg.IntMetadataValue(2)
    assert observation.metadata["by_reason"].value == {NOT_JSON: 2}
    assert observation.metadata["by_dead_lettered_by"].value == {"intake": 2}
    assert observation.metadata["oldest_age_seconds"].value >= 0
    assert (evaluation.check_name, evaluation.passed) == (CHECK_NAME, False)
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert "2 job message(s) on the dead-letter queue" in evaluation.description
    # Read, not consumed: both are still there, visible, with their bodies.
    assert counts(local_aws, local_aws.dead_letter_queue_url) == (2, 0)
    assert sorted(letter["body"] for letter in dead_letters(local_aws)) == ["not json", "{also not json"]

    emptied = _observe(instance, local_aws, observed.cursor)

    observation, evaluation = _events(emptied)
    assert observation.metadata["depth"] == dg.IntMetadataValue(0)
    assert evaluation.passed
    # Nothing changed since: nothing new is recorded until the queue changes (or 15 minutes pass).
    assert _observe(instance, local_aws, emptied.cursor).asset_events == []


def test_the_check_run_on_demand_reads_the_queue_the_same_way(local_aws):
    check = dg.build_asset_check_context(resources={"sqs": sqs_resource(local_aws)})
    assert dead_letter_queue_is_empty(check).passed

    send(local_aws, "not json")
    local_aws.client("sqs").send_message(
        QueueUrl=local_aws.dead_letter_queue_url,
        MessageBody=m.delete_package(3, 7),
        MessageAttributes={"reason": {"DataType": "String", "StringValue": "package_id 3: refused: no"}},
    )

    result = dead_letter_queue_is_empty(check)

    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert result.metadata["depth"] == dg.IntMetadataValue(1)
    assert result.metadata["by_reason"].value == {"package_id N: refused: no": 1}
    assert counts(local_aws, local_aws.dead_letter_queue_url) == (1, 0)


def test_new_dead_letters_are_alerted_once_with_their_counts_per_reason(local_aws, tick, instance):
    subscriber = AlertSubscriber(local_aws)
    send(local_aws, "not json", m.body("NoSuchJob", id="x"))
    tick()

    first = _observe(instance, local_aws)

    (alert,) = subscriber.alerts()
    assert alert.subject == "[jobs-orchestration] 2 new dead letter(s), 2 on the queue"
    assert alert.attributes == {"alert_kind": "dead_letters"}
    assert f"1 × {NOT_JSON}" in alert.text
    assert "1 × unknown job type …; known" in alert.text
    assert "http://dagster.example:3000/assets/dead_letter_queue" in alert.text
    # The same letters again: no second alert.
    second = _observe(instance, local_aws, first.cursor)
    assert subscriber.alerts() == []
    # One more dead letter: one more alert, naming it as the new one.
    send(local_aws, "[]")
    tick()
    _observe(instance, local_aws, second.cursor)
    (alert,) = subscriber.alerts()
    assert alert.subject == "[jobs-orchestration] 1 new dead letter(s), 3 on the queue"


def test_without_an_alerts_topic_the_alert_is_logged_and_not_sent(local_aws, tick, instance, caplog):
    subscriber = AlertSubscriber(local_aws)
    send(local_aws, "not json")
    tick()

    with caplog.at_level(logging.WARNING):
        result = _observe(instance, local_aws, log_handler=caplog.handler, topic=False)

    assert subscriber.alerts() == []
    assert "alert not sent (ALERTS_TOPIC_ARN is not set)" in caplog.text
    assert "1 new dead letter(s), 1 on the queue" in caplog.text
    assert _events(result)[1].passed is False


def test_the_redrive_job_moves_the_chosen_dead_letters_back_and_leaves_the_others(local_aws, tick, instance):
    refused = m.delete_package(5, 7, id="refused-one")
    sqs = local_aws.client("sqs")
    for body, reason in ((refused, "package_id 5: refused: not DELETING"), ("not json", "body is not JSON")):
        sqs.send_message(
            QueueUrl=local_aws.dead_letter_queue_url,
            MessageBody=body,
            MessageAttributes={"reason": {"DataType": "String", "StringValue": reason}},
        )

    result = _redrive(instance, local_aws, max_messages=10, reason_contains="REFUSED")

    assert result.success
    assert result.output_for_node(REDRIVE_OP) == 1
    # Back on the job queue, unchanged; the other one stays a dead letter.
    messages = sqs.receive_message(QueueUrl=local_aws.queue_url, MaxNumberOfMessages=10)["Messages"]
    assert [message["Body"] for message in messages] == [refused]
    assert [letter["body"] for letter in dead_letters(local_aws, keep=True)] == ["not json"]
    # The run records the queue as it left it: one message still fails the check.
    (evaluation,) = result.get_asset_check_evaluations()
    assert (evaluation.check_name, evaluation.passed) == (CHECK_NAME, False)
    observation = next(
        event.asset_observation_data.asset_observation
        for event in result.all_events
        if event.event_type_value == "ASSET_OBSERVATION"
    )
    assert observation.metadata["depth"] == dg.IntMetadataValue(1)


def test_the_redrive_job_fails_naming_an_id_it_did_not_find_and_moves_at_most_what_was_asked(
    local_aws, instance
):
    sqs = local_aws.client("sqs")
    for index in range(3):
        sqs.send_message(QueueUrl=local_aws.dead_letter_queue_url, MessageBody=f"letter {index}")

    missing = _redrive(instance, local_aws, max_messages=5, message_ids=["no-such-id"])
    assert not missing.success
    assert "no dead letter with id no-such-id" in missing.failure_data_for_node(REDRIVE_OP).error.message
    assert counts(local_aws, local_aws.dead_letter_queue_url) == (3, 0)

    assert _redrive(instance, local_aws, max_messages=2).success
    assert counts(local_aws, local_aws.dead_letter_queue_url) == (1, 0)
    assert counts(local_aws, local_aws.queue_url)[0] == 2


def test_the_redrive_job_must_be_told_how_many(local_aws, instance):
    with pytest.raises(dg.DagsterInvalidConfigError, match="max_messages"):
        dg.validate_run_config(redrive_dead_letters_job, {"ops": {REDRIVE_OP: {"config": {}}}})


def test_the_command_line_redrives_through_the_same_code(local_aws):
    local_aws.client("sqs").send_message(QueueUrl=local_aws.dead_letter_queue_url, MessageBody="replay me")

    listed = CliRunner().invoke(main, ["dlq", "list"], catch_exceptions=False)
    assert json.loads(listed.output)["body"] == "replay me"
    redriven = CliRunner().invoke(main, ["dlq", "redrive"], catch_exceptions=False)

    assert "redrove 1 message(s)" in redriven.output
    assert counts(local_aws, local_aws.dead_letter_queue_url) == (0, 0)
    assert counts(local_aws, local_aws.queue_url)[0] == 1
