"""The snapshot cleanup in Dagster: the job, its schedule in a DST zone, and the recorded metadata."""

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from dagster._utils.schedules import cron_string_iterator

from jobs_orchestration.db.email_parser import SnapshotType
from jobs_orchestration.definitions import defs
from jobs_orchestration.defs.snapshots.schedules import nightly_schedule
from jobs_orchestration.settings import SettingsError, load_settings
from jobs_orchestration.snapshots.store import LocalFolderStore
from jobs_orchestration_tests.support.snapshots import add_snapshots, snapshot_state

SNAPSHOT_CLEANUP = dg.AssetKey("snapshot_cleanup")
OSLO = ZoneInfo("Europe/Oslo")


def seed_expired(email_parser_db, store, file_ids, size_bytes=1000):
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=8)
    with email_parser_db.begin() as connection:
        add_snapshots(connection, store, file_ids, created_at=long_ago, size_bytes=size_bytes)
        add_snapshots(
            connection, store, ["keep"], created_at=long_ago, snapshot_type=SnapshotType.ORDER_ATTACHMENT
        )


def run_job(instance, **config):
    job = defs.resolve_job_def("snapshot_cleanup_job")
    return job.execute_in_process(
        instance=instance,
        run_config={"ops": {"snapshot_cleanup": {"config": config}}},
        raise_on_error=False,
        tags={"job_family": "snapshot_cleanup"},
    )


def latest_metadata(instance):
    event = instance.get_latest_materialization_event(SNAPSHOT_CLEANUP)
    assert event is not None
    return {key: value.value for key, value in event.asset_materialization.metadata.items()}


def test_a_materialization_records_its_figures(project_env, email_parser_db, snapshot_root, instance):
    store = LocalFolderStore(snapshot_root)
    seed_expired(email_parser_db, store, [f"f{i}" for i in range(5)])

    result = run_job(instance, batch_size=2)

    assert result.success
    metadata = latest_metadata(instance)
    assert metadata["deleted_count"] == 5 and metadata["candidates"] == 5
    assert metadata["bytes_freed"] == 5000 and metadata["error_count"] == 0
    assert metadata["bytes_freed_last_30_days"] == 5000 and metadata["files_freed_last_30_days"] == 5
    assert metadata["batches"] == 3 and metadata["dry_run"] is False
    assert isinstance(metadata["duration_seconds"], float)
    started = dt.datetime.fromtimestamp(metadata["run_started_at"], dt.UTC)
    assert abs(started - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
    assert metadata["run_started_at"] - metadata["cutoff"] == pytest.approx(7 * 86400)
    assert list(store.iter_keys()) == ["keep.pdf"]
    run = instance.get_run_by_id(result.run_id)
    assert run.tags["job_family"] == "snapshot_cleanup"


def test_a_partial_failure_records_what_was_deleted_then_fails(
    project_env, email_parser_db, snapshot_root, instance
):
    store = LocalFolderStore(snapshot_root)
    seed_expired(email_parser_db, store, ["ok1", "ok2", "stuck"])
    (snapshot_root / "stuck.pdf").unlink()
    (snapshot_root / "stuck.pdf").mkdir()  # a directory where the file should be: unlink fails

    result = run_job(instance)

    assert not result.success
    metadata = latest_metadata(instance)
    assert (metadata["deleted_count"], metadata["error_count"], metadata["bytes_freed"]) == (2, 1, 2000)
    assert metadata["errors"].startswith("stuck (stuck.pdf): ")
    failure = next(event for event in result.all_events if event.is_step_failure)
    assert "1 snapshot files could not be deleted" in failure.step_failure_data.error.message
    with email_parser_db.begin() as connection:
        state = snapshot_state(connection)
    assert state["stuck"][0] is not None and state["stuck"][1] is None and state["stuck"][2]


def test_dry_run_and_max_deletions_through_the_job(project_env, email_parser_db, snapshot_root, instance):
    store = LocalFolderStore(snapshot_root)
    seed_expired(email_parser_db, store, ["a", "b", "c"])

    assert run_job(instance, dry_run=True).success
    metadata = latest_metadata(instance)
    assert (metadata["candidates"], metadata["deleted_count"], metadata["dry_run"]) == (3, 0, True)

    refused = run_job(instance, max_deletions=2)
    assert not refused.success
    failure = next(event for event in refused.all_events if event.is_step_failure)
    assert "more than max_deletions=2" in failure.step_failure_data.error.message
    assert len(list(store.iter_keys())) == 4

    bad = run_job(instance, batch_size=0)
    failure = next(event for event in bad.all_events if event.is_step_failure)
    assert "batch_size=0" in failure.step_failure_data.error.message


def test_the_schedule_runs_at_three_local_time_across_dst(instance):
    schedule = nightly_schedule("Europe/Oslo")
    assert schedule.execution_timezone == "Europe/Oslo" and schedule.cron_schedule == "0 3 * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING

    # Europe/Oslo leaves summer time on 2026-10-25: 03:00 is 01:00 UTC before, 02:00 UTC after.
    start = dt.datetime(2026, 10, 23, 12, 0, tzinfo=OSLO).timestamp()
    ticks = list(itertools.islice(cron_string_iterator(start, "0 3 * * *", "Europe/Oslo"), 4))
    assert [tick.astimezone(OSLO).strftime("%m-%d %H:%M") for tick in ticks] == [
        "10-24 03:00",
        "10-25 03:00",
        "10-26 03:00",
        "10-27 03:00",
    ]
    assert [tick.astimezone(dt.UTC).hour for tick in ticks] == [1, 2, 2, 2]

    # And into summer time on 2026-03-29 (02:00 to 03:00 is skipped; 03:00 itself exists).
    start = dt.datetime(2026, 3, 28, 12, 0, tzinfo=OSLO).timestamp()
    ticks = list(itertools.islice(cron_string_iterator(start, "0 3 * * *", "Europe/Oslo"), 2))
    assert [tick.astimezone(dt.UTC).hour for tick in ticks] == [1, 1]
    assert [tick.astimezone(OSLO).hour for tick in ticks] == [3, 3]

    tick_time = dt.datetime(2026, 3, 29, 3, 0, tzinfo=OSLO)
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=tick_time)
    run_requests = schedule.evaluate_tick(context).run_requests
    assert len(run_requests) == 1
    assert run_requests[0].job_name in (None, "snapshot_cleanup_job")


def test_the_schedule_in_the_definitions_uses_the_default_zone():
    schedule = defs.resolve_schedule_def("nightly_snapshot_cleanup")
    assert schedule.job_name == "snapshot_cleanup_job"
    assert schedule.execution_timezone == "Europe/Oslo"
    assert defs.resolve_job_def("snapshot_cleanup_job").tags["job_family"] == "snapshot_cleanup"


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "CET+1", "../etc/passwd"])
def test_a_bad_time_zone_is_refused_with_its_name(name, monkeypatch):
    monkeypatch.setenv("SNAPSHOT_CLEANUP_TIMEZONE", name)
    with pytest.raises(SettingsError, match=r"SNAPSHOT_CLEANUP_TIMEZONE=.*: is not an IANA time zone name"):
        load_settings()


def test_utc_is_accepted(monkeypatch):
    monkeypatch.setenv("SNAPSHOT_CLEANUP_TIMEZONE", "UTC")
    assert nightly_schedule(load_settings().snapshot_cleanup_timezone).execution_timezone == "UTC"


def test_a_long_cleanup_shows_its_progress_while_it_runs(
    project_env, email_parser_db, snapshot_root, logging_instance
):
    store = LocalFolderStore(snapshot_root)
    seed_expired(email_parser_db, store, [f"p{i}" for i in range(5)])

    result = run_job(logging_instance, batch_size=2, delete_workers=1, progress_interval_seconds=0)

    assert result.success
    lines = [
        entry.user_message
        for entry in logging_instance.all_logs(result.run_id)
        if entry.user_message.startswith("snapshot cleanup: ") and " / 5 snapshot files" in entry.user_message
    ]
    assert lines[-1].startswith("snapshot cleanup: 5 / 5 snapshot files (100%) in 0 s, ")
    records = logging_instance.get_records_for_run(
        result.run_id, of_type=dg.DagsterEventType.ASSET_OBSERVATION
    ).records
    observations = [record.asset_observation.metadata for record in records]
    done = [metadata["progress_done"].value for metadata in observations]
    assert done == sorted(done) and done[-1] == 5
    assert {metadata["progress_total"].value for metadata in observations} == {5}
    assert logging_instance.get_run_by_id(result.run_id).tags["progress"].startswith("5 / 5 snapshot files")
