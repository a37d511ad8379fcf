from __future__ import annotations

import json

from click.testing import CliRunner

from jobs_orchestration.cli import main
from jobs_orchestration_tests.support import job_messages as m
from jobs_orchestration_tests.support.intake_jobs import create_run
from jobs_orchestration_tests.support.queue import counts


def run_cli(*args: str, input: str | None = None) -> str:
    result = CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_enqueue_then_sensor_then_run(local_aws, instance, tick) -> None:
    message_id = run_cli(
        "enqueue",
        "delete-package",
        "--package-id",
        "42",
        "--organization-id",
        "7",
        "--user-id",
        "N:user:1",
        "--id",
        "job-1",
        "--trace-id",
        "trace-1",
    ).strip()
    (body,) = [
        message["Body"]
        for message in local_aws.client("sqs").receive_message(
            QueueUrl=local_aws.queue_url, VisibilityTimeout=0
        )["Messages"]
        if message["MessageId"] == message_id
    ]
    assert json.loads(body) == json.loads(
        m.delete_package(42, 7, id="job-1", traceId="trace-1").replace("N:user:3c1f", "N:user:1")
    )

    first = tick()
    (request,) = first.run_requests
    assert request.job_name == "delete_package_job"
    run = create_run(instance, request)
    assert run.output_for_node("delete_packages") == [42]
    tick(first.cursor)
    assert counts(local_aws, local_aws.queue_url) == (0, 0)


def test_enqueue_changelog_cache_population_and_dataset(local_aws, tick) -> None:
    run_cli(
        "enqueue",
        "changelog",
        "--organization-id",
        "7",
        "--dataset-id",
        "13",
        "--user-id",
        "N:user:1",
        "--event",
        "UPDATE_NAME",
        "--detail",
        '{"oldName": "a", "newName": "b"}',
        "--event",
        "CREATE_DATASET",
    )
    run_cli("enqueue", "cache-population", "--organization-id", "7", "--dry-run")
    run_cli("enqueue", "cache-population")
    run_cli(
        "enqueue", "delete-dataset", "--dataset-id", "13", "--organization-id", "7", "--user-id", "N:user:1"
    )
    jobs = sorted(request.job_name for request in tick().run_requests)
    assert jobs == [
        "dataset_changelog_job",
        "delete_dataset_job",
        "storage_refresh_job",
        "storage_totals_job",
    ]


def test_enqueue_refuses_a_message_the_intake_would_reject(local_aws) -> None:
    result = CliRunner().invoke(main, ["enqueue", "raw", '{"DeletePackageJob": {"packageId": 1}}'])
    assert result.exit_code != 0
    assert "field id is missing" in result.output
    assert counts(local_aws, local_aws.queue_url) == (0, 0)


def test_dead_letters_list_redrive_and_purge(local_aws, tick) -> None:
    bad_id = run_cli("enqueue", "raw", "--no-validate", "not json").strip()
    other_id = run_cli("enqueue", "raw", "--no-validate", '{"Nope": {}}').strip()
    tick()
    listed = [json.loads(line) for line in run_cli("dlq", "list").splitlines()]
    assert {(e["source_message_id"], e["body"]) for e in listed} == {
        (bad_id, "not json"),
        (other_id, '{"Nope": {}}'),
    }
    assert all(e["reason"] for e in listed)
    assert counts(local_aws, local_aws.dead_letter_queue_url) == (2, 0)  # listing leaves them in place

    assert "redrove 1 message(s)" in run_cli("dlq", "redrive", "--id", bad_id)
    assert counts(local_aws, local_aws.dead_letter_queue_url) == (1, 0)
    (back,) = local_aws.client("sqs").receive_message(QueueUrl=local_aws.queue_url)["Messages"]
    assert back["Body"] == "not json"

    run_cli("dlq", "purge", "--yes")
    assert counts(local_aws, local_aws.dead_letter_queue_url) == (0, 0)
