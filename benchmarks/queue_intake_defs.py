"""The code location `queue_intake.py` runs the daemon against: `sqs_jobs_sensor` over jobs with the
contract names and run config that make the AWS calls the real ones make per message (the changelog
job publishes every event to SNS in batches of 10) and no database work, so the figures measure the
intake and Dagster's per-run cost. Sensor interval and batch sizes come from the settings.

The jobs run their op in the run's own process (`in_process_executor`): with one op per job, the
multiprocess executor would only add a second Python start-up to every run."""

import json

import dagster as dg

from jobs_orchestration.defs.changelog.config import ChangelogEventsConfig
from jobs_orchestration.defs.deletion.config import DeleteDatasetConfig, DeletePackagesConfig
from jobs_orchestration.defs.intake.job_types import SQS_JOB_TYPES
from jobs_orchestration.defs.intake.sensor import (
    JOB_QUEUE_ASSET,
    build_sqs_jobs_sensor,
)
from jobs_orchestration.defs.resources import SNSResource
from jobs_orchestration.defs.resources.definitions import resources_from_environment
from jobs_orchestration.settings import load_settings

SNS_MAX_BATCH = 10


@dg.op
def delete_packages(config: DeletePackagesConfig) -> int:
    return len(config.requests)


@dg.op
def delete_dataset(config: DeleteDatasetConfig) -> int:
    return config.dataset_id


@dg.op
def record_changelog_events(config: ChangelogEventsConfig, sns: SNSResource) -> int:
    client = sns.get_client()
    entries = [
        {
            "Id": str(index),
            "Message": json.dumps({"datasetId": str(message.dataset_id), "eventType": event.event_type}),
        }
        for message in config.messages
        for index, event in enumerate(message.events)
    ]
    for start in range(0, len(entries), SNS_MAX_BATCH):
        chunk = [{**entry, "Id": str(i)} for i, entry in enumerate(entries[start : start + SNS_MAX_BATCH])]
        client.publish_batch(TopicArn=sns.topic_arn, PublishBatchRequestEntries=chunk)
    return len(entries)


@dg.job(executor_def=dg.in_process_executor)
def delete_package_job() -> None:
    delete_packages()


@dg.job(executor_def=dg.in_process_executor)
def delete_dataset_job() -> None:
    delete_dataset()


@dg.job(executor_def=dg.in_process_executor)
def dataset_changelog_job() -> None:
    record_changelog_events()


BENCHMARK_JOBS = [delete_package_job, delete_dataset_job, dataset_changelog_job]
sqs_jobs_sensor = build_sqs_jobs_sensor(
    [
        job_type.routed_to(BENCHMARK_JOBS)
        for job_type in SQS_JOB_TYPES
        if {job.name for job in job_type.jobs} <= {job.name for job in BENCHMARK_JOBS}
    ],
    minimum_interval_seconds=load_settings().jobs_intake_interval_seconds,
)

resources = resources_from_environment()
defs = dg.Definitions(
    assets=[JOB_QUEUE_ASSET],
    sensors=[sqs_jobs_sensor],
    resources={"sqs": resources["sqs"], "sns": resources["sns"]},
)
