"""The task policies of the synthesized stack, proven sufficient and minimal on the project's real code.

A moto server of its own enforces IAM; each component acts as an IAM user holding exactly its task
policy from the template. The code server's intake tick, the run task's package and dataset deletions,
changelog publish, snapshot cleanup and dead-letter redrive, and Dagster's compute log manager run
with those users. Every AWS call is recorded and judged against the component's policy: each must be
allowed (sufficient), each statement's actions must be used by some call (minimal, but for the few
named in NOT_EXERCISED with why), and calls outside a policy are refused. How each service is proven:
iam_moto.SERVICE_PROOF.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from dagster._core.storage.compute_log_manager import ComputeIOType
from dagster_aws.s3 import S3ComputeLogManager

from deploy.stack import contract
from jobs_orchestration.alerts import Alert, publish_alert
from jobs_orchestration.changelog.publish import publish_outbox
from jobs_orchestration.changelog.record import IncomingEvent, IncomingMessage, record_messages
from jobs_orchestration.db.platform import DatasetAssetKind, DatasetState, PackageType
from jobs_orchestration.deletion.report import Outcome
from jobs_orchestration.deletion.service import DeletionStores, delete_dataset, delete_package
from jobs_orchestration.intake.dead_letter_summary import summarize_dead_letter_queue
from jobs_orchestration.intake.dead_letters import DeadLetter, send_dead_letters
from jobs_orchestration.intake.handoff import IntakeLimits, QueueIntake
from jobs_orchestration.intake.redrive import RedriveChoice, redrive_dead_letters
from jobs_orchestration.snapshots.cleanup import CleanupOptions, run_cleanup
from jobs_orchestration.snapshots.store import S3SnapshotStore
from jobs_orchestration_tests.support import job_messages
from jobs_orchestration_tests.support.changelog import (
    DATASET_ID,
    ORGANIZATION_ID,
    USER_NODE_ID,
    seed_platform,
)
from jobs_orchestration_tests.support.iam_moto import (
    COMPUTE_LOG_BUCKET,
    REGION,
    Deployment,
    provision,
    running_iam_emulator,
)
from jobs_orchestration_tests.support.iam_policies import (
    Call,
    CallRecorder,
    Permission,
    as_list,
    evaluate,
    granting_statement,
    required_permissions,
    statements,
)
from jobs_orchestration_tests.support.platform_data import PlatformData, keys_in
from jobs_orchestration_tests.support.snapshots import NOW, add_snapshots

NOT_EXERCISED = {
    ("run", "WriteRunLogs", "s3:AbortMultipartUpload"): (
        "boto3's transfer manager aborts a multipart upload of a run log (over 8 MiB) only when the upload fails"
    ),
    ("run", "DeadLetterAndRedrive", "sqs:GetQueueAttributes"): (
        "the redrive job reads the dead-letter counts; its shared redrive code, run here, does not"
    ),
}
"""Permissions no test path here calls, and why each is still needed."""


@pytest.fixture(scope="module")
def iam_emulator():
    with running_iam_emulator() as emulator:
        yield emulator


@pytest.fixture
def deployment(iam_emulator, synthesized) -> Deployment:
    return provision(iam_emulator, synthesized.document)


@pytest.fixture
def recorder() -> CallRecorder:
    return CallRecorder()


@pytest.fixture
def admin_s3(deployment):
    return deployment.admin.client("s3", deployment.endpoint)


@pytest.fixture
def admin_sqs(deployment):
    return deployment.admin.client("sqs", deployment.endpoint)


def judge(deployment: Deployment, calls: list[Call], component: str) -> set[tuple[str, str]]:
    """Assert every call is allowed by the component's policy; returns the (Sid, action) pairs used."""
    assert calls, f"no AWS call was recorded for {component}"
    policy = deployment.policies[component]
    used = set()
    for call in calls:
        for permission in required_permissions(call):
            assert evaluate([policy], permission), (
                f"{component}'s policy does not allow {permission.action} on {permission.resource} "
                f"({call.service}:{call.operation})"
            )
            used.add((granting_statement(policy, permission), permission.action))
    counts = Counter(f"{call.service}:{call.operation}" for call in calls)
    print(f"\n{component}: {len(calls)} calls judged against its policy: {dict(sorted(counts.items()))}")
    return used


def granted(deployment: Deployment, component: str) -> set[tuple[str, str]]:
    return {
        (statement["Sid"], action)
        for statement in statements(deployment.policies[component])
        for action in as_list(statement["Action"])
    }


def assert_minimal(deployment: Deployment, component: str, used: set[tuple[str, str]]) -> None:
    excused = {(sid, action) for (owner, sid, action) in NOT_EXERCISED if owner == component}
    unused = granted(deployment, component) - used - excused
    assert not unused, f"{component}'s policy grants what no call needed: {sorted(unused)}"
    assert not excused & used, f"NOT_EXERCISED lists permissions that were used: {sorted(excused & used)}"


def write_log(manager: S3ComputeLogManager, log_key: list[str], text: str) -> None:
    with manager.open_log_stream(log_key, ComputeIOType.STDERR) as stream:
        stream.write(text)


@pytest.fixture
def default_session_as(deployment, monkeypatch) -> Iterator[Any]:
    """For code that builds its clients with boto3.client(...): the default session acts for a
    component, every call recorded. (A default session left from an earlier test would keep the keys
    it first read, which belong to an emulator state that is gone.)"""

    def act_as(component: str, service: str, recorder: CallRecorder) -> None:
        credentials = deployment.credentials_for(component, service)
        for name, value in credentials.environment(deployment.endpoint).items():
            monkeypatch.setenv(name, value)
        session = boto3.session.Session(
            aws_access_key_id=credentials.access_key_id,
            aws_secret_access_key=credentials.secret_access_key,
            region_name=REGION,
        )
        recorder.attach_session(session, component)
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", session)

    yield act_as


@pytest.fixture
def compute_logs(default_session_as, deployment, tmp_path):
    """Dagster's S3 compute log manager acting for a component (it makes its own client from the
    default session), its calls recorded."""

    created: list[S3ComputeLogManager] = []

    def manager(component: str, recorder: CallRecorder) -> S3ComputeLogManager:
        default_session_as(component, "s3", recorder)
        created.append(
            S3ComputeLogManager(
                bucket=COMPUTE_LOG_BUCKET,
                prefix=contract.COMPUTE_LOG_PREFIX,
                local_dir=str(tmp_path / component),
                endpoint_url=deployment.endpoint,
                region=REGION,
            )
        )
        return created[-1]

    yield manager
    for each in created:
        each.dispose()


def queue_depth(admin_sqs, url: str) -> int:
    attributes = admin_sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def test_the_emulator_checks_credentials(deployment):
    stranger = boto3.client(
        "sqs",
        endpoint_url=deployment.endpoint,
        region_name=REGION,
        aws_access_key_id="AKIAUNKNOWN000000000",
        aws_secret_access_key="not-a-key",
    )
    with pytest.raises(ClientError, match="InvalidClientTokenId"):
        stranger.list_queues()


def test_the_code_server_policy_is_sufficient_and_minimal(deployment, recorder, admin_sqs, compute_logs):
    for body in (
        job_messages.delete_package(package_id=11),
        job_messages.changelog(),
        job_messages.cache_population(),
        "{not a job message",
    ):
        admin_sqs.send_message(QueueUrl=deployment.queue_url, MessageBody=body)
    sqs = deployment.client("code", "sqs", recorder)
    intake = QueueIntake(
        sqs,
        deployment.queue_url,
        deployment.dead_letter_queue_url,
        # One receive at a time: two at once can both get a message from moto, which would blur the
        # counts this test checks the policy by.
        IntakeLimits(max_seconds=3, wait_time_seconds=1, concurrent_calls=1),
    )

    first = intake.tick(None, run_exists=lambda run_key: False, route=lambda batch: batch.run_key)
    assert first.errors == [] and first.received == 4
    assert len(first.requests) == 3 and len(first.dead_letters) == 1
    second = intake.tick(first.cursor, run_exists=lambda run_key: True, route=lambda batch: batch.run_key)
    assert second.errors == [] and second.acknowledged == 3
    assert queue_depth(admin_sqs, deployment.queue_url) == 0

    # The run-failure sensor gives a failed run's messages to the dead-letter queue through the same
    # call the intake and the ops use; the alerts publish to ALERTS_TOPIC_ARN (their call's shape).
    sent = send_dead_letters(
        sqs,
        deployment.dead_letter_queue_url,
        [
            DeadLetter(
                "m-12", job_messages.delete_package(package_id=12), "run failed", "run_failure", "run-1"
            )
        ],
    )
    assert sent.all_sent, sent.errors
    # dead_letter_queue_sensor reads the dead letters without consuming them; the alerts go to
    # ALERTS_TOPIC_ARN through the project's own publisher.
    summary = summarize_dead_letter_queue(sqs, deployment.dead_letter_queue_url)
    assert summary.visible + summary.in_flight == 2
    publish_alert(
        deployment.client("code", "sns", recorder),
        deployment.alerts_topic_arn,
        Alert(kind="run_failure", subject="a run failed", text="a run failed"),
    )
    assert queue_depth(admin_sqs, deployment.dead_letter_queue_url) == 2

    # Sensor tick logs, written by Dagster's compute log manager in the code server's process.
    write_log(compute_logs("code", recorder), ["sensor", "sqs_jobs_sensor", "tick-1"], "tick log\n")

    used = judge(deployment, recorder.by("code"), "code")
    assert_minimal(deployment, "code", used)


def test_the_run_task_policy_is_sufficient_and_minimal(
    deployment, recorder, admin_s3, admin_sqs, platform_db, email_parser_db, compute_logs, default_session_as
):
    parameters = deployment.parameters
    datasets, assets = parameters["DatasetsBucketName"], parameters["DatasetAssetsBucketName"]
    timeseries = parameters["TimeseriesBucketName"]
    s3 = deployment.client("run", "s3", recorder)
    stores = DeletionStores(platform_db.engine, s3, timeseries, workers=2)
    data = PlatformData(platform_db.engine, admin_s3)

    # A package deletion: a folder with a file and a multi-object file under it.
    organization = data.organization()
    dataset = data.dataset(organization, state=DatasetState.READY)
    folder = data.package(dataset, organization, package_type=PackageType.COLLECTION)
    inside = data.package(dataset, organization, parent_id=folder)
    data.file(inside, datasets, "run-proof/a.pdf")
    data.prefix_file(inside, datasets, "run-proof/scan.zarr", count=3)
    report = delete_package(stores, folder, organization)
    assert report.outcome is Outcome.DELETED, report.message
    assert keys_in(admin_s3, datasets) == set()

    # A dataset deletion: assets in the bucket that keeps versions, a file, time-series ranges.
    doomed = data.dataset(organization)
    data.asset(doomed, DatasetAssetKind.BANNER, assets, f"{doomed}/banner.png")
    data.file(data.package(doomed, organization), datasets, "run-proof/b.csv")
    data.timeseries(doomed, organization, timeseries)
    report = delete_dataset(stores, doomed, organization)
    assert report.outcome is Outcome.DELETED, report.message
    versions = admin_s3.list_object_versions(Bucket=assets)
    assert not versions.get("Versions") and not versions.get("DeleteMarkers")
    assert keys_in(admin_s3, timeseries) == set()

    # The snapshot cleanup on S3, under the snapshot prefix.
    bucket, prefix = parameters["SnapshotBucketName"], deployment.snapshot_prefix
    with email_parser_db.begin() as connection:
        add_snapshots(
            connection,
            S3SnapshotStore(admin_s3, bucket, prefix),
            [f"snap-{index}" for index in range(5)],
            created_at=NOW - dt.timedelta(days=10),
        )
    cleanup = run_cleanup(
        email_parser_db.engine, S3SnapshotStore(s3, bucket, prefix), CleanupOptions(delete_workers=2), now=NOW
    )
    assert (cleanup.deleted_count, cleanup.error_count) == (5, 0), cleanup.errors
    assert keys_in(admin_s3, bucket) == set()

    # A changelog publish.
    with platform_db.begin() as connection:
        seed_platform(connection)
        recorded = record_messages(
            connection,
            [
                IncomingMessage(
                    organization_id=ORGANIZATION_ID,
                    dataset_id=DATASET_ID,
                    user_node_id=USER_NODE_ID,
                    events=[IncomingEvent("UPDATE_NAME", '{"oldName": "a", "newName": "b"}')] * 3,
                    job_id="run-proof",
                )
            ],
        )
    sns = deployment.client("run", "sns", recorder)
    published = publish_outbox(
        platform_db.engine, sns, deployment.changelog_topic_arn, event_ids=recorded.event_ids
    )
    assert (published.published, published.failed) == (3, 0), published.errors

    # A poison member of a batch, dead-lettered by its op; then that dead letter redriven by id, the
    # one beside it released again.
    admin_sqs.send_message(QueueUrl=deployment.dead_letter_queue_url, MessageBody="{not a job message")
    sqs = deployment.client("run", "sqs", recorder)
    sent = send_dead_letters(
        sqs,
        deployment.dead_letter_queue_url,
        [DeadLetter("m-13", job_messages.delete_package(package_id=13), "refused", "run", "run-1")],
    )
    assert sent.all_sent, sent.errors
    poison = "m-13"  # its source message id, by which `dlq redrive --id` finds it
    # The redrive job (and `jobs-orchestration dlq redrive`) through their shared code.
    outcome = redrive_dead_letters(
        sqs, deployment.queue_url, deployment.dead_letter_queue_url, RedriveChoice(ids=frozenset({poison}))
    )
    assert len(outcome.moved) == 1 and not outcome.not_sent
    assert queue_depth(admin_sqs, deployment.queue_url) == 1
    assert queue_depth(admin_sqs, deployment.dead_letter_queue_url) == 1

    # The run's own logs.
    write_log(compute_logs("run", recorder), ["storage", "run-1", "compute_logs", "op"], "run log\n")

    used = judge(deployment, recorder.by("run"), "run")
    assert_minimal(deployment, "run", used)


def test_the_webserver_reads_compute_logs_with_its_policy(deployment, recorder, compute_logs):
    log_key = ["storage", "run-2", "compute_logs", "op"]
    write_log(compute_logs("run", CallRecorder()), log_key, "shown in the UI\n")
    data = compute_logs("webserver", recorder).get_log_data(log_key)
    assert b"shown in the UI" in data.stderr
    calls = recorder.by("webserver")
    assert {call.operation for call in calls} >= {"HeadObject", "GetObject"}
    judge(deployment, calls, "webserver")


def test_calls_outside_a_policy_are_refused(deployment):
    endpoint = deployment.endpoint
    # SQS: refused by the emulator itself.
    code_sqs = deployment.credentials("code").client("sqs", endpoint)
    with pytest.raises(ClientError, match="AccessDenied"):
        code_sqs.send_message(
            QueueUrl=deployment.queue_url, MessageBody="only the platform's services send here"
        )
    run_sqs = deployment.credentials("run").client("sqs", endpoint)
    with pytest.raises(ClientError, match="AccessDenied"):
        run_sqs.receive_message(QueueUrl=deployment.queue_url)
    # S3 and SNS: refused by the policies (the emulator would let the S3 delete through).
    parameters = deployment.parameters
    refused = {
        "code": [Permission("s3:DeleteObject", f"arn:aws:s3:::{parameters['DatasetsBucketName']}/a.pdf")],
        "run": [
            Permission("sns:Publish", deployment.alerts_topic_arn),
            Permission(
                "s3:DeleteObject", f"arn:aws:s3:::{parameters['SnapshotBucketName']}/outside/prefix.pdf"
            ),
            Permission("s3:DeleteObject", f"arn:aws:s3:::{COMPUTE_LOG_BUCKET}/compute-logs/x"),
        ],
        "webserver": [
            Permission("s3:PutObject", f"arn:aws:s3:::{COMPUTE_LOG_BUCKET}/compute-logs/x"),
            Permission("s3:ListBucket", f"arn:aws:s3:::{COMPUTE_LOG_BUCKET}", (("s3:prefix", "other/"),)),
        ],
    }
    for component, permissions in refused.items():
        for permission in permissions:
            assert not evaluate([deployment.policies[component]], permission), (component, permission)
    assert evaluate(
        [deployment.policies["webserver"]],
        Permission(
            "s3:ListBucket", f"arn:aws:s3:::{COMPUTE_LOG_BUCKET}", (("s3:prefix", "compute-logs/a/"),)
        ),
    )


def test_an_unmapped_call_is_not_judged_silently():
    call = Call("s3", "PutBucketPolicy", {"Bucket": "b"}, REGION, "run")
    with pytest.raises(NotImplementedError, match="s3:PutBucketPolicy"):
        required_permissions(call)


def test_the_users_hold_the_templates_policies(deployment):
    # The emulator's users hold the template's documents with only the references filled in.
    iam = deployment.admin.client("iam", deployment.endpoint)
    for component, policy in deployment.policies.items():
        held = iam.get_user_policy(UserName=deployment.credentials(component).user, PolicyName="task")
        document = held["PolicyDocument"]
        assert (json.loads(document) if isinstance(document, str) else document) == policy
