"""S3, SNS, SQS or PostgreSQL taken away while jobs run (a TCP proxy in front of the real moto server or
PostgreSQL, switched off and on): runs retry with backoff and finish once the service is back, or fail
visibly with nothing lost, and the intake sensor keeps its pending acknowledgements across the outage.

An outage that a run must outlast ends as soon as the run has scheduled its first retry, so each test
waits one backoff delay, not a fixed guess; an outage longer than every retry uses the jobs' own retry
count and backoff compressed in time.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster._core.definitions.dependency import NodeHandle
from dagster._core.utils import make_new_run_id
from dagster_aws.s3 import S3Resource

from jobs_orchestration.db.engine import create_db_engine
from jobs_orchestration.db.platform import DatasetChangelogEvent, File
from jobs_orchestration.definitions import defs
from jobs_orchestration.defs.changelog.config import RECORD_CHANGELOG_EVENTS_OP
from jobs_orchestration.defs.changelog.jobs import changelog_outbox_job, dataset_changelog_job
from jobs_orchestration.defs.deletion.config import (
    DELETE_DATASET_OP,
    DELETE_PACKAGES_OP,
    DeleteDatasetConfig,
    DeletePackageRequest,
    DeletePackagesConfig,
)
from jobs_orchestration.defs.deletion.jobs import delete_dataset_job, delete_package_job
from jobs_orchestration.defs.deletion.resources import DeletionSettings
from jobs_orchestration.defs.intake.sensor import build_sqs_jobs_sensor
from jobs_orchestration.defs.resources import BoundedS3Resource, PlatformDatabase, SNSResource, SQSResource
from jobs_orchestration.defs.resources.definitions import resources_from_environment
from jobs_orchestration.defs.retries import OUTAGE_RETRY_POLICY
from jobs_orchestration.defs.storage.jobs import storage_totals_job
from jobs_orchestration.defs.storage.refresh import storage_refresh_run_request
from jobs_orchestration.devstack.aws import DATASET_BUCKET, TIMESERIES_BUCKET, LocalAws
from jobs_orchestration.intake.handoff import IntakeLimits
from jobs_orchestration_tests.support import job_messages as m
from jobs_orchestration_tests.support.changelog import (
    DATASET_ID,
    ORGANIZATION_ID,
    USER_NODE_ID,
    TopicSubscriber,
    seed_platform,
)
from jobs_orchestration_tests.support.faults import wrap_s3_clients
from jobs_orchestration_tests.support.intake_jobs import INTAKE_JOB_TYPES, create_run
from jobs_orchestration_tests.support.platform_data import (
    PlatformData,
    count_rows,
    keys_in,
    package_state,
)
from jobs_orchestration_tests.support.platform_tree import cached_sizes
from jobs_orchestration_tests.support.proxy import TcpProxy, target_of_database, target_of_endpoint
from jobs_orchestration_tests.support.queue import counts, send, sqs_resource
from jobs_orchestration_tests.support.random_platform import generate, load
from jobs_orchestration_tests.support.retries import retries_of, with_compressed_retries
from jobs_orchestration_tests.support.runs import audit_rows, step_metadata

OUTAGE_LIMIT_SECONDS = 30
"""No outage of these tests lasts longer, whatever happens to the run."""


# -- the proxies and the outage ------------------------------------------------------------------------


@pytest.fixture
def aws_proxy(local_aws: LocalAws) -> Iterator[TcpProxy]:
    """The moto server (S3, SNS, SQS alike), reachable through a proxy the test can switch off."""
    proxy = TcpProxy(*target_of_endpoint(local_aws.endpoint_url))
    yield proxy
    proxy.close()


@pytest.fixture
def postgres_proxy(clean_database: str) -> Iterator[TcpProxy]:
    proxy = TcpProxy(*target_of_database(clean_database))
    yield proxy
    proxy.close()


@contextmanager
def outage_until_first_retry(proxy: TcpProxy, instance: dg.DagsterInstance, run_id: str) -> Iterator[None]:
    """The service is off from now until the run `run_id` has failed an attempt and scheduled its retry."""
    proxy.down()
    with back_after_first_retry(proxy, instance, run_id):
        yield


@contextmanager
def back_after_first_retry(proxy: TcpProxy, instance: dg.DagsterInstance, run_id: str) -> Iterator[None]:
    """The service, whenever the block takes it away, is back once the run `run_id` has scheduled its
    first retry."""
    finished = threading.Event()

    def restore_on_retry() -> None:
        deadline = time.monotonic() + OUTAGE_LIMIT_SECONDS
        while not finished.is_set() and time.monotonic() < deadline:
            try:
                if instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY):
                    break
            except Exception:  # the run's event log may not exist yet
                pass
            time.sleep(0.05)
        proxy.up()

    watcher = threading.Thread(target=restore_on_retry, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        finished.set()
        watcher.join()


# -- deletions -------------------------------------------------------------------------------------------


@pytest.fixture
def s3(local_aws: LocalAws) -> Any:
    return local_aws.client("s3")


@pytest.fixture
def data(platform_db: PlatformDatabase, s3: Any) -> PlatformData:
    return PlatformData(platform_db.engine, s3)


def _deletion_resources(platform_db: PlatformDatabase, s3_resource: S3Resource) -> dict[str, Any]:
    return {
        "platform_db": platform_db,
        "s3": s3_resource,
        # One batch at a time, so an outage starting after a batch stops the deletion at a known place.
        "deletion": DeletionSettings(timeseries_bucket=TIMESERIES_BUCKET, parallel_deletes=1),
        # A request from the launchpad has no message: nothing is dead-lettered, failures fail the run.
        "sqs": SQSResource(queue_url="unused", dead_letter_queue_url="unused", region_name="us-east-1"),
    }


def _s3_through(proxy: TcpProxy, aws: LocalAws, **options: Any) -> BoundedS3Resource:
    return BoundedS3Resource(
        endpoint_url=proxy.endpoint_url(aws.endpoint_url), region_name=aws.region, **options
    )


# Clients that give up at the first refused connection, for runs that must use up every retry: the
# attempts then cost no client-side waiting.
NO_CLIENT_RETRY = {"max_attempts": 1}


def _delete_package(job, resources, instance, package_id: int, organization_id: int, run_id=None):
    config = DeletePackagesConfig(
        requests=[DeletePackageRequest(package_id=package_id, organization_id=organization_id, job_id="p")]
    )
    return job.execute_in_process(
        run_config=dg.RunConfig(ops={DELETE_PACKAGES_OP: config}),
        resources=resources,
        instance=instance,
        raise_on_error=False,
        run_id=run_id,
    )


def _delete_dataset(job, resources, instance, dataset_id: int, organization_id: int):
    config = DeleteDatasetConfig(dataset_id=dataset_id, organization_id=organization_id, job_id="d")
    return job.execute_in_process(
        run_config=dg.RunConfig(ops={DELETE_DATASET_OP: config}),
        resources=resources,
        instance=instance,
        raise_on_error=False,
    )


def _objects_match_rows(s3: Any, engine: sa.Engine) -> set[str]:
    """The keys still stored in the dataset bucket, asserted to be exactly those the file rows name:
    nothing deleted behind the platform's back, nothing the platform still points at gone."""
    with engine.connect() as connection:
        located = set(connection.scalars(sa.select(File.s3_key).where(File.s3_bucket == DATASET_BUCKET)))
    stored = keys_in(s3, DATASET_BUCKET)
    assert stored == located
    return stored


def test_s3_outage_during_a_package_deletion_is_retried_and_finishes_once_s3_is_back(
    data, s3, platform_db, local_aws, aws_proxy, instance
):
    org = data.organization()
    package = data.package(data.dataset(org), org)
    for index in range(5):
        data.file(package, DATASET_BUCKET, f"outage/{index}.bin")
    resources = _deletion_resources(platform_db, _s3_through(aws_proxy, local_aws))
    run_id = make_new_run_id()

    with outage_until_first_retry(aws_proxy, instance, run_id):
        result = _delete_package(delete_package_job, resources, instance, package, org, run_id=run_id)

    assert result.success
    assert retries_of(result) >= 1
    assert keys_in(s3, DATASET_BUCKET) == set()
    assert package_state(platform_db.engine, package) == "DELETED"
    [audit] = audit_rows(platform_db.engine)
    assert (audit.outcome, audit.files_deleted) == ("deleted", 5)
    assert audit.detail["attempts"] == retries_of(result) + 1


def test_postgres_lost_between_the_objects_and_the_rows_is_finished_by_the_retry(
    data, s3, platform_db, local_aws, postgres_proxy, instance, clean_database, monkeypatch
):
    org = data.organization()
    dataset = data.dataset(org)
    package = data.package(dataset, org)
    for index in range(3):
        data.file(package, DATASET_BUCKET, f"rows/{index}.bin")
    data.file(package, TIMESERIES_BUCKET, "rows/range.bin")
    database = PlatformDatabase(url=postgres_proxy.database_url(clean_database))
    run_id = make_new_run_id()
    cut_after_first_delete = threading.Event()

    def install(client: Any) -> None:
        real = client.delete_objects

        def delete_objects(**kwargs: Any) -> dict[str, Any]:
            response = real(**kwargs)
            if not cut_after_first_delete.is_set():
                cut_after_first_delete.set()
                postgres_proxy.down()  # the objects are gone, their rows not yet
            return response

        client.delete_objects = delete_objects

    wrap_s3_clients(monkeypatch, install)
    resources = _deletion_resources(
        database, S3Resource(endpoint_url=local_aws.endpoint_url, region_name=local_aws.region)
    )
    try:
        with back_after_first_retry(postgres_proxy, instance, run_id):
            result = _delete_package(delete_package_job, resources, instance, package, org, run_id=run_id)
    finally:
        database.engine.dispose()

    assert cut_after_first_delete.is_set()
    assert result.success
    assert retries_of(result) >= 1
    assert keys_in(s3, DATASET_BUCKET) == set() and keys_in(s3, TIMESERIES_BUCKET) == set()
    assert count_rows(platform_db.engine, File) == 0
    assert package_state(platform_db.engine, package) == "DELETED"
    assert audit_rows(platform_db.engine)[-1].outcome == "deleted"


def test_s3_outage_longer_than_every_retry_fails_visibly_with_nothing_lost_and_a_rerun_finishes(
    data, s3, platform_db, local_aws, aws_proxy, instance, monkeypatch
):
    org = data.organization()
    dataset = data.dataset(org)
    package = data.package(dataset, org)
    for index in range(3):
        data.file(package, TIMESERIES_BUCKET, f"first/{index}.bin")
    for index in range(3):
        data.file(package, DATASET_BUCKET, f"second/{index}.bin")
    delete_calls: list[str] = []

    def install(client: Any) -> None:
        real = client.delete_objects

        def delete_objects(**kwargs: Any) -> dict[str, Any]:
            delete_calls.append(kwargs["Bucket"])
            response = real(**kwargs)
            aws_proxy.down()  # S3 goes away after the first batch and stays away
            return response

        client.delete_objects = delete_objects

    wrap_s3_clients(monkeypatch, install, BoundedS3Resource)
    resources = _deletion_resources(platform_db, _s3_through(aws_proxy, local_aws, **NO_CLIENT_RETRY))
    job = with_compressed_retries(delete_dataset_job)

    failed = _delete_dataset(job, resources, instance, dataset, org)

    assert not failed.success
    assert retries_of(failed) == job.op_retry_policy.max_retries
    # Only the first batch got through; each attempt after it gave up at its first call.
    assert len(delete_calls) == 1
    assert keys_in(s3, TIMESERIES_BUCKET) == set()
    assert _objects_match_rows(s3, platform_db.engine) == {f"second/{index}.bin" for index in range(3)}
    assert package_state(platform_db.engine, package) == "DELETING"
    audit = audit_rows(platform_db.engine)[-1]
    assert audit.outcome == "failed"
    assert "unreachable" in json.dumps(audit.detail)
    [failure] = step_metadata(failed, DELETE_DATASET_OP)["failures"]
    assert "stopped early: S3" in failure["message"] and failure["remaining"]

    aws_proxy.up()
    monkeypatch.undo()
    rerun = _delete_dataset(delete_dataset_job, resources, instance, dataset, org)

    assert rerun.success
    assert keys_in(s3, DATASET_BUCKET) == set()
    assert package_state(platform_db.engine, package) is None
    assert audit_rows(platform_db.engine)[-1].files_deleted == 3


# -- the changelog ---------------------------------------------------------------------------------------


@pytest.fixture
def seeded_db(platform_db: PlatformDatabase) -> PlatformDatabase:
    with platform_db.begin() as connection:
        seed_platform(connection)
    return platform_db


def _changelog_config(job_id: str) -> dict[str, Any]:
    message = {
        "organization_id": ORGANIZATION_ID,
        "dataset_id": DATASET_ID,
        "user_id": USER_NODE_ID,
        "job_id": job_id,
        "events": [
            {"event_type": "ADD_TAG", "event_detail_json": json.dumps({"name": "mri"})},
            {"event_type": "UPDATE_NAME", "event_detail_json": json.dumps({"oldName": "a", "newName": "b"})},
        ],
    }
    return {"ops": {RECORD_CHANGELOG_EVENTS_OP: {"config": {"messages": [message]}}}}


def _sns_through(proxy: TcpProxy, aws: LocalAws, **options: Any) -> SNSResource:
    return SNSResource(
        topic_arn=aws.topic_arn,
        endpoint_url=proxy.endpoint_url(aws.endpoint_url),
        region_name=aws.region,
        **options,
    )


def _event_rows(engine: sa.Engine) -> list[sa.Row]:
    with engine.connect() as connection:
        return list(connection.execute(sa.select(DatasetChangelogEvent.__table__)).all())


def _delivered_once(subscriber: TopicSubscriber, engine: sa.Engine) -> None:
    delivered = [delivery.attributes["eventId"] for delivery in subscriber.drain()]
    stored = _event_rows(engine)
    assert sorted(delivered) == sorted(row.event_id for row in stored)
    assert all(row.published_at is not None for row in stored)


def test_sns_outage_during_the_changelog_job_is_retried_and_each_event_published_once(
    seeded_db, local_aws, aws_proxy, instance
):
    subscriber = TopicSubscriber(local_aws)
    sns = _sns_through(aws_proxy, local_aws)
    run_id = make_new_run_id()

    with outage_until_first_retry(aws_proxy, instance, run_id):
        result = dataset_changelog_job.execute_in_process(
            run_config=_changelog_config("sns-outage"),
            resources={"platform_db": seeded_db, "sns": sns, "sqs": sqs_resource(local_aws)},
            instance=instance,
            run_id=run_id,
            raise_on_error=False,
        )

    assert result.success
    assert retries_of(result) >= 1
    _delivered_once(subscriber, seeded_db.engine)


def test_sns_outage_longer_than_every_retry_fails_visibly_and_the_sweep_publishes_each_event_once(
    seeded_db, local_aws, aws_proxy, instance
):
    subscriber = TopicSubscriber(local_aws)
    sns = _sns_through(aws_proxy, local_aws, **NO_CLIENT_RETRY)
    resources = {"platform_db": seeded_db, "sns": sns, "sqs": sqs_resource(local_aws)}
    job = with_compressed_retries(dataset_changelog_job)

    with aws_proxy.outage():
        failed = job.execute_in_process(
            run_config=_changelog_config("long-sns-outage"),
            resources=resources,
            instance=instance,
            raise_on_error=False,
        )

    assert not failed.success
    assert retries_of(failed) == job.op_retry_policy.max_retries
    stored = _event_rows(seeded_db.engine)
    assert len(stored) == 2, "recorded once, whatever the number of attempts"
    assert all(row.published_at is None and "unreachable" in row.last_publish_error for row in stored)

    sweep = changelog_outbox_job.execute_in_process(
        run_config={"ops": {"publish_changelog_outbox": {"config": {"min_age_seconds": 0}}}},
        resources=resources,
        instance=instance,
    )

    assert sweep.success
    _delivered_once(subscriber, seeded_db.engine)


def test_postgres_outage_while_recording_changelog_events_is_retried_and_loses_nothing(
    seeded_db, local_aws, postgres_proxy, clean_database, instance
):
    subscriber = TopicSubscriber(local_aws)
    database = PlatformDatabase(url=postgres_proxy.database_url(clean_database))
    sns = SNSResource(
        topic_arn=local_aws.topic_arn, endpoint_url=local_aws.endpoint_url, region_name=local_aws.region
    )
    run_id = make_new_run_id()

    try:
        with outage_until_first_retry(postgres_proxy, instance, run_id):
            result = dataset_changelog_job.execute_in_process(
                run_config=_changelog_config("postgres-outage"),
                resources={"platform_db": database, "sns": sns, "sqs": sqs_resource(local_aws)},
                instance=instance,
                run_id=run_id,
                raise_on_error=False,
            )
    finally:
        database.engine.dispose()

    assert result.success
    assert retries_of(result) >= 1
    assert len(_event_rows(seeded_db.engine)) == 2
    _delivered_once(subscriber, seeded_db.engine)


# -- storage totals --------------------------------------------------------------------------------------


def test_postgres_outage_during_the_storage_totals_job_is_retried_and_the_totals_are_right(
    platform_db, postgres_proxy, clean_database, instance
):
    platform = generate(random.Random(11), organizations=3, datasets_per_organization=(1, 2))
    load(platform_db.engine, platform)
    database = PlatformDatabase(url=postgres_proxy.database_url(clean_database))
    run_id = make_new_run_id()

    try:
        with outage_until_first_retry(postgres_proxy, instance, run_id):
            result = storage_totals_job.execute_in_process(
                run_config=storage_refresh_run_request(None).run_config,
                instance=instance,
                resources={"platform_db": database},
                run_id=run_id,
                raise_on_error=False,
            )
    finally:
        database.engine.dispose()

    assert result.success
    assert retries_of(result) >= 1
    assert cached_sizes(platform_db.engine) == platform.expected()


NOT_RETRIED = {
    # An operator's one-off move of dead letters back to the job queue: a retry after SQS took some of
    # them but before they left the dead-letter queue would send those twice; the operator runs it again.
    "redrive_dead_letters_job",
}


def test_every_job_retries_a_failed_step_with_backoff(project_env):
    for job in defs.get_repository_def().get_all_jobs():
        if job.name.startswith("__"):  # Dagster's implicit asset job, never run as such
            continue
        if job.name in NOT_RETRIED:
            assert job.op_retry_policy is None, job.name
            continue
        for node in job.graph.node_dict:
            policy = job.get_retry_policy_for_handle(NodeHandle(node, None))
            assert policy == OUTAGE_RETRY_POLICY, f"{job.name}.{node}"
    assert OUTAGE_RETRY_POLICY.backoff is dg.Backoff.EXPONENTIAL and OUTAGE_RETRY_POLICY.jitter


# -- the intake sensor -----------------------------------------------------------------------------------


def test_sqs_outage_during_a_tick_keeps_the_pending_acknowledgements_until_sqs_is_back(
    local_aws, aws_proxy, instance
):
    sensor = build_sqs_jobs_sensor(INTAKE_JOB_TYPES, limits=IntakeLimits(wait_time_seconds=0))
    sqs = SQSResource(
        queue_url=local_aws.queue_url,
        dead_letter_queue_url=local_aws.dead_letter_queue_url,
        endpoint_url=aws_proxy.endpoint_url(local_aws.endpoint_url),
        region_name=local_aws.region,
    )

    def tick(cursor: str | None) -> dg.SensorResult:
        with dg.build_sensor_context(
            instance_ref=instance.get_ref(), resources={"sqs": sqs}, cursor=cursor
        ) as context:
            return sensor(context)

    send(local_aws, m.delete_package(1, 7, id="with-run"), m.delete_dataset(2, 7, id="without-run"))
    first = tick(None)
    with_run, without_run = sorted(first.run_requests, key=lambda request: request.job_name, reverse=True)
    assert with_run.job_name == "delete_package_job"
    create_run(instance, with_run)

    with aws_proxy.outage():
        during = tick(first.cursor)
        # The test's own client goes straight to moto: nothing left the queue.
        assert counts(local_aws, local_aws.queue_url) == (0, 2)

    assert during.run_requests == []
    assert during.asset_events[0].metadata["acknowledged"] == dg.IntMetadataValue(0)
    assert during.asset_events[0].metadata["errors"].value >= 1
    pending = json.loads(during.cursor)["pending"]
    assert set(pending) == {with_run.run_key, without_run.run_key}

    after = tick(during.cursor)

    assert after.run_requests == []
    assert after.asset_events[0].metadata["acknowledged"] == dg.IntMetadataValue(1)
    # The message with a run is gone; the one whose run never appeared stays, to come back.
    assert counts(local_aws, local_aws.queue_url) == (0, 1)
    assert set(json.loads(after.cursor)["pending"]) == {without_run.run_key}


# -- bounded clients -----------------------------------------------------------------------------------


def test_clients_and_database_connections_give_up_on_a_silent_service_within_seconds(clean_database):
    assert isinstance(resources_from_environment()["s3"], BoundedS3Resource)
    clients = [
        BoundedS3Resource(region_name="us-east-1").get_client(),
        SQSResource(queue_url="q", dead_letter_queue_url="d", region_name="us-east-1").get_client(),
        SNSResource(topic_arn="t", region_name="us-east-1").get_client(),
    ]
    for client in clients:
        config = client.meta.config
        assert (config.connect_timeout, config.read_timeout) == (5, 30)
        assert config.retries == {"mode": "standard", "total_max_attempts": 3}

    engine = create_db_engine(clean_database)
    try:
        with engine.connect() as connection:
            parameters = connection.connection.dbapi_connection.get_dsn_parameters()
    finally:
        engine.dispose()
    assert parameters["connect_timeout"] == "5" and parameters["keepalives"] == "1"
