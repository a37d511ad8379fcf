"""A deletion shows where it is while it runs: lines in the run's event log from the deletion's own
logger, and the run's `progress` tag."""

from __future__ import annotations

import dagster as dg

from jobs_orchestration.db.platform import DatasetAssetKind
from jobs_orchestration.defs.deletion.config import DELETE_DATASET_OP, DeleteDatasetConfig
from jobs_orchestration.defs.deletion.jobs import delete_dataset_job
from jobs_orchestration.defs.deletion.resources import DeletionSettings
from jobs_orchestration.defs.progress import PROGRESS_TAG
from jobs_orchestration.devstack.aws import DATASET_ASSETS_BUCKET, DATASET_BUCKET, TIMESERIES_BUCKET


def test_a_dataset_deletion_reports_rows_done_against_its_total(data, deletion_resources, logging_instance):
    org = data.organization()
    dataset = data.dataset(org)
    data.asset(dataset, DatasetAssetKind.BANNER, DATASET_ASSETS_BUCKET, f"{dataset}/banner.png")
    package = data.package(dataset, org)
    for index in range(3):
        data.file(package, DATASET_BUCKET, f"progress/{index}.csv")
    resources = {
        **deletion_resources,
        # Every chance to report is taken, so a deletion of a few rows reports too.
        "deletion": DeletionSettings(timeseries_bucket=TIMESERIES_BUCKET, progress_interval_seconds=0),
    }

    result = delete_dataset_job.execute_in_process(
        run_config=dg.RunConfig(
            ops={DELETE_DATASET_OP: DeleteDatasetConfig(dataset_id=dataset, organization_id=org)}
        ),
        resources=resources,
        instance=logging_instance,
    )

    assert result.success
    prefix = f"dataset {dataset} deletion: "
    lines = [
        entry.user_message
        for entry in logging_instance.all_logs(result.run_id)
        if entry.user_message.startswith(prefix)
    ]
    assert lines, "no progress line in the run's event log"
    assert lines[-1].startswith(f"{prefix}4 / 4 files, ranges and assets (100%) in 0 s, ")
    tag = logging_instance.get_run_by_id(result.run_id).tags[PROGRESS_TAG]
    assert tag.startswith("4 / 4 files, ranges and assets (100%) in ")


def test_a_deletion_within_its_first_interval_reports_nothing(data, delete_packages, instance):
    org = data.organization()
    package = data.package(data.dataset(org), org)
    data.file(package, DATASET_BUCKET, "quick/a.csv")

    result = delete_packages((package, org))

    assert result.success
    assert PROGRESS_TAG not in instance.get_run_by_id(result.run_id).tags
