from __future__ import annotations

import json
import time

import dagster as dg
import pytest

from jobs_orchestration.defs.intake.sensor import build_sqs_jobs_sensor, limits_from_settings
from jobs_orchestration.intake.handoff import IntakeLimits, QueueIntake
from jobs_orchestration.settings import Settings, SettingsError, load_settings
from jobs_orchestration_tests.intake.conftest import intake_definitions
from jobs_orchestration_tests.support import job_messages as m
from jobs_orchestration_tests.support.intake_jobs import INTAKE_JOB_TYPES, create_run
from jobs_orchestration_tests.support.queue import counts, send, sqs_resource


def test_each_message_type_routes_to_its_job_with_valid_config(local_aws, tick) -> None:
    package_body = m.delete_package(42, 7, id="p1", traceId="trace-p")
    send(
        local_aws,
        package_body,
        m.delete_dataset(13, 7, id="d1"),
        m.changelog(13, 7, id="c1", events=[m.UPDATE_NAME]),
        m.cache_population(7, dry_run=True, id="s1"),
        m.cache_population(None, id="s2"),
    )
    result = tick()
    defs = intake_definitions(local_aws)
    by_job = {request.job_name: request for request in result.run_requests}
    assert set(by_job) == m.SQS_FIRED_JOBS
    for request in result.run_requests:
        assert dg.validate_run_config(defs.resolve_job_def(request.job_name), request.run_config)
        assert request.run_key

    packages = by_job["delete_package_job"]
    requests = packages.run_config["ops"]["delete_packages"]["config"]["requests"]
    # Each request carries its message as received, to be dead-lettered if the run cannot do it.
    assert [request.pop("source")["body"] for request in requests] == [package_body]
    assert requests == [
        {
            "package_id": 42,
            "organization_id": 7,
            "user_id": "N:user:3c1f",
            "trace_id": "trace-p",
            "job_id": "p1",
        }
    ]
    assert {
        k: packages.tags[k] for k in ("organization_id", "trace_id", "job_family", "producer_job_ids")
    } == {
        "organization_id": "7",
        "trace_id": "trace-p",
        "job_family": "deletion",
        "producer_job_ids": "p1",
    }
    dataset = by_job["delete_dataset_job"].run_config["ops"]["delete_dataset"]["config"]
    assert (dataset["dataset_id"], dataset["job_id"]) == (13, "d1")
    (message,) = by_job["dataset_changelog_job"].run_config["ops"]["record_changelog_events"]["config"][
        "messages"
    ]
    assert message["events"][0]["event_type"] == "UPDATE_NAME"
    assert json.loads(message["events"][0]["event_detail_json"]) == {"oldName": "a", "newName": "b"}
    assert by_job["dataset_changelog_job"].tags["job_family"] == "changelog"

    storage = by_job["storage_refresh_job"]
    assert storage.partition_key == "7"
    storage_config = storage.run_config["ops"]["package_storage"]["config"]
    assert storage_config["dry_run"] is True
    assert [
        json.loads(source["body"])["CachePopulationJob"]["id"] for source in storage_config["sources"]
    ] == ["s1"]
    assert storage.tags["job_family"] == "storage"
    # The organization's partition is added in the same tick, before the run is created.
    (add,) = result.dynamic_partitions_requests
    assert (add.partitions_def_name, list(add.partition_keys)) == ("organizations", ["7"])

    (observation,) = result.asset_events
    assert observation.asset_key == dg.AssetKey("job_queue")
    assert observation.metadata["received"] == dg.IntMetadataValue(5)
    assert observation.metadata["in_flight"] == dg.IntMetadataValue(5)


def test_message_is_deleted_only_once_its_run_exists(local_aws, instance, tick) -> None:
    send(local_aws, m.delete_package(1, 7, id="a"), m.delete_package(2, 8, id="b"))
    first = tick()
    assert len(first.run_requests) == 2
    assert counts(local_aws, local_aws.queue_url) == (0, 2)  # received, not deleted

    created, never_created = first.run_requests
    outcome = create_run(instance, created)
    assert outcome.success

    second = tick(first.cursor)
    assert second.run_requests == []
    assert second.asset_events[0].metadata["acknowledged"] == dg.IntMetadataValue(1)
    assert counts(local_aws, local_aws.queue_url) == (0, 1)  # the run-less message stays to come back
    assert never_created.run_key in json.loads(second.cursor)["pending"]


def test_the_queue_is_observed_when_a_figure_changed_or_a_minute_passed(local_aws, tick) -> None:
    first = tick()
    assert [event.asset_key for event in first.asset_events] == [dg.AssetKey("job_queue")]

    idle = tick(first.cursor)
    assert idle.asset_events == []  # the same figures: no new point

    cursor = json.loads(idle.cursor)
    cursor["observed"]["at"] -= 61  # as if the last observation were a minute old
    assert len(tick(json.dumps(cursor)).asset_events) == 1

    send(local_aws, m.delete_package(1, 7))
    busy = tick(idle.cursor)
    assert busy.asset_events[0].metadata["received"] == dg.IntMetadataValue(1)
    # The intake's own cursor is untouched by the sensor's key.
    assert set(json.loads(busy.cursor)) == {"version", "pending", "handed_off", "observed"}


def test_redelivered_and_resent_messages_ask_for_no_second_run(local_aws, instance, tick) -> None:
    sqs = local_aws.client("sqs")
    send(local_aws, m.delete_package(1, 7, id="a"))
    first = tick()
    (request,) = first.run_requests

    # Before the run exists the message comes back (visibility expired): no second request.
    (receipt,) = json.loads(first.cursor)["pending"][request.run_key]["receipts"]
    sqs.change_message_visibility(QueueUrl=local_aws.queue_url, ReceiptHandle=receipt, VisibilityTimeout=0)
    second = tick(first.cursor)
    assert second.run_requests == []
    assert second.asset_events[0].metadata["duplicates"] == dg.IntMetadataValue(1)

    create_run(instance, request)
    third = tick(second.cursor)
    assert third.run_requests == []
    assert counts(local_aws, local_aws.queue_url) == (0, 0)

    # The producer sends the same job again later: recognized by key and deleted, no new run.
    send(local_aws, m.delete_package(1, 7, id="a"))
    fourth = tick(third.cursor)
    assert fourth.run_requests == []
    assert counts(local_aws, local_aws.queue_url) == (0, 0)
    # A new request for the same package (a new producer id) is new work.
    send(local_aws, m.delete_package(1, 7, id="b"))
    assert len(tick(fourth.cursor).run_requests) == 1


def test_malformed_messages_go_to_the_dead_letter_queue_and_valid_ones_route(local_aws, tick) -> None:
    malformed = [
        "not json",
        "[]",
        "{}",
        '{"NoSuchJob": {"id": "x"}}',
        '{"DeletePackageJob": "x"}',
        m.body("DeletePackageJob", packageId=1, organizationId=7, userId="u", traceId="t"),
        m.delete_package(package_id="1"),
        m.delete_package(organization_id=None),
        m.delete_dataset(dataset_id=1.5),
        m.body("DeleteDatasetJob", datasetId=1, organizationId=7, userId="u", id="x"),
        m.cache_population(dry_run=None),
        m.cache_population(organization_id="7"),
        m.body("CachePopulationJob", organizationId=7, id="x"),
        m.changelog(eventType="UPDATE_NAME"),
        m.changelog(eventDetail={}),
        m.changelog(events="UPDATE_NAME"),
        m.changelog(events=[{"eventDetail": {}}]),
        m.changelog(events=[{"eventType": "ADD_TAG", "eventDetail": "tag"}]),
        m.changelog(dataset_id=None),
        '{"DeletePackageJob": {"packageId": 1',
    ]
    valid = [m.delete_package(i, 7 + i % 2) for i in range(1, 16)] + [
        m.changelog(i, events=[m.UPDATE_NAME]) for i in range(1, 16)
    ]
    bodies = [b for pair in zip(valid[:20], malformed, strict=True) for b in pair] + valid[20:]
    send(local_aws, *bodies)

    result = tick()
    routed = [
        member for request in result.run_requests for member in request.tags["producer_job_ids"].split(",")
    ]
    assert len(routed) == 30
    assert result.asset_events[0].metadata["dead_lettered"] == dg.IntMetadataValue(20)
    assert counts(local_aws, local_aws.queue_url) == (0, 30)

    sqs = local_aws.client("sqs")
    dead = []
    while batch := sqs.receive_message(
        QueueUrl=local_aws.dead_letter_queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    ).get("Messages"):
        dead.extend(batch)
    assert sorted(message["Body"] for message in dead) == sorted(malformed)
    for message in dead:
        attributes = message["MessageAttributes"]
        assert attributes["reason"]["StringValue"]
        assert attributes["source_message_id"]["StringValue"]
    reasons = {message["Body"]: message["MessageAttributes"]["reason"]["StringValue"] for message in dead}
    assert "unknown job type 'NoSuchJob'" in reasons['{"NoSuchJob": {"id": "x"}}']
    assert 'field packageId: Input should be a valid integer (value "1")' in reasons[malformed[6]]


def test_a_tick_over_a_large_backlog_stops_at_its_count_bound(local_aws, tick) -> None:
    # moto's SQS scans the whole queue on every call, so a few hundred messages already make a backlog
    # that takes many receives to drain.
    send(local_aws, *[m.delete_package(i, 7) for i in range(1, 301)])
    # Time bounds beyond the test's own timeout (300 s), so only the count bound can end the receiving:
    # on a loaded machine each of moto's receives over this backlog takes a second or more, and the
    # default 6 s ran out after 30 to 80 messages. (The time bound has its own test below.)
    limits = IntakeLimits(
        batch_size=10, max_messages=120, max_seconds=3600.0, tick_seconds=3600.0, wait_time_seconds=0
    )
    result = tick(limits=limits)
    assert result.asset_events[0].metadata["received"] == dg.IntMetadataValue(120)
    requested = [r.run_config["ops"]["delete_packages"]["config"]["requests"] for r in result.run_requests]
    assert [len(requests) for requests in requested] == [10] * 12
    assert counts(local_aws, local_aws.queue_url) == (180, 120)


def test_a_tick_stops_receiving_at_its_time_bound(local_aws) -> None:
    send(local_aws, *[m.changelog(i) for i in range(1, 301)])
    client = local_aws.client("sqs")
    receive = client.receive_message

    def slow_receive(**kwargs):
        time.sleep(0.1)  # a slow SQS endpoint
        return receive(**kwargs)

    client.receive_message = slow_receive
    limits = IntakeLimits(max_seconds=0.35)
    intake = QueueIntake(client, local_aws.queue_url, local_aws.dead_letter_queue_url, limits)
    started = time.monotonic()
    result = intake.tick(None, run_exists=lambda key: False, route=lambda batch: batch)
    # At most four receives fit in 0.35 s on each of the concurrent calls' threads.
    assert 0 < result.received <= 4 * limits.concurrent_calls * 10 < 300
    assert time.monotonic() - started < 5
    assert sum(len(batch.members) for batch in result.requests) == result.received


def test_sensor_definition_loads_with_its_resources(local_aws) -> None:
    defs = intake_definitions(local_aws)
    dg.Definitions.validate_loadable(defs)
    sensor = defs.resolve_sensor_def("sqs_jobs_sensor")
    assert sensor.required_resource_keys == {"sqs"}
    assert sensor.minimum_interval_seconds == 4
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert {target.job_name for target in sensor.targets} >= {
        "delete_package_job",
        "delete_dataset_job",
        "dataset_changelog_job",
    }


def test_sensor_interval_comes_from_the_settings(monkeypatch) -> None:
    monkeypatch.delenv("JOBS_INTAKE_INTERVAL_SECONDS", raising=False)
    assert load_settings().jobs_intake_interval_seconds == 4
    monkeypatch.setenv("JOBS_INTAKE_INTERVAL_SECONDS", "30")
    assert load_settings().jobs_intake_interval_seconds == 30
    monkeypatch.setenv("JOBS_INTAKE_INTERVAL_SECONDS", "0")
    with pytest.raises(SettingsError, match="JOBS_INTAKE_INTERVAL_SECONDS='0': .*greater than or equal to 1"):
        load_settings()


def test_batch_sizes_come_from_the_settings_and_default_to_the_intake_s(monkeypatch) -> None:
    monkeypatch.delenv("JOBS_INTAKE_BATCH_SIZE", raising=False)
    monkeypatch.delenv("JOBS_INTAKE_CHANGELOG_BATCH_SIZE", raising=False)
    assert limits_from_settings(Settings()) == IntakeLimits()
    limits = limits_from_settings(Settings(JOBS_INTAKE_BATCH_SIZE=1))
    assert (limits.batch_size, limits.changelog_batch_size) == (1, IntakeLimits().changelog_batch_size)
    limits = limits_from_settings(Settings(JOBS_INTAKE_CHANGELOG_BATCH_SIZE=300))
    assert (limits.batch_size, limits.changelog_batch_size) == (IntakeLimits().batch_size, 300)


def test_each_tick_reads_the_batch_size_when_it_starts(local_aws, instance, monkeypatch) -> None:
    # Built before the variable is set: the tick, not the definition, reads it.
    sensor = build_sqs_jobs_sensor(INTAKE_JOB_TYPES)
    monkeypatch.setenv("JOBS_INTAKE_BATCH_SIZE", "1")
    send(local_aws, *(m.delete_package(package, 7, id=f"p{package}") for package in (1, 2, 3)))
    resources = {"sqs": sqs_resource(local_aws)}
    with dg.build_sensor_context(instance_ref=instance.get_ref(), resources=resources) as context:
        result = sensor(context)
    assert sorted(request.tags["producer_job_ids"] for request in result.run_requests) == ["p1", "p2", "p3"]

    monkeypatch.setenv("JOBS_INTAKE_BATCH_SIZE", "none")
    with (
        dg.build_sensor_context(instance_ref=instance.get_ref(), resources=resources) as context,
        pytest.raises(SettingsError, match="JOBS_INTAKE_BATCH_SIZE='none'"),
    ):
        sensor(context)
