"""The demo of `jobs-orchestration dev`: the seeded data holds a dataset and package trees in DELETING,
and the messages written for it end as the script says: the deletions and the changelog event done, the
bad deletion dead-lettered by its run, and redriven to success once the package is DELETING."""

from __future__ import annotations

import shlex
import subprocess

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from jobs_orchestration.cli import main
from jobs_orchestration.db.engine import create_db_engine
from jobs_orchestration.db.migrate import upgrade
from jobs_orchestration.db.platform import Dataset, DatasetChangelogEvent, Package
from jobs_orchestration.devstack.demo import (
    DemoTargets,
    demo_messages,
    demo_script,
    mark_demo_deletions,
    mark_package_deleting,
)
from jobs_orchestration.devstack.seed import SeedSizes, http_object_writer, seed_platform
from jobs_orchestration_tests.support.queue import dead_letters
from jobs_orchestration_tests.support.real_runs import intake_tick, run_request

DEV_SIZES = SeedSizes()
"""What `jobs-orchestration dev` seeds."""


def seed_demo(connection: sa.Connection, write=None) -> DemoTargets:
    summary = seed_platform(connection, DEV_SIZES, *([write] if write else []))
    return mark_demo_deletions(connection, summary.organization_ids[0], summary.user_node_ids[0])


def states(connection: sa.Connection, model) -> dict[int, str]:
    return {row.id: row.state.value for row in connection.execute(sa.select(model.id, model.state))}


def test_the_demo_sets_its_targets_deleting_and_nothing_else(platform_db):
    with platform_db.begin() as connection:
        before = states(connection, Package)
        targets = seed_demo(connection)
        packages = states(connection, Package)
        datasets = states(connection, Dataset)
        rows = connection.execute(sa.select(Package.id, Package.parent_id))
        parents = {row.id: row.parent_id for row in rows}

    def under_a_target(package_id: int | None) -> bool:
        while package_id is not None:
            if package_id in targets.package_ids:
                return True
            package_id = parents[package_id]
        return False

    seeded = set(packages) - set(before)
    deleting = {package_id for package_id in seeded if packages[package_id] == "DELETING"}
    assert deleting == {package_id for package_id in seeded if under_a_target(package_id)}
    assert len(deleting) == targets.deleting_package_count > len(targets.package_ids) >= 1
    assert {packages[package_id] for package_id in seeded - deleting} == {"READY"}
    assert packages[targets.refused_package_id] == "READY"
    assert [d for d, state in datasets.items() if state == "DELETING"] == [targets.dataset_id]
    assert targets.changelog_dataset_id != targets.dataset_id


def test_the_same_seed_gives_the_same_targets_with_or_without_objects(tmp_path):
    written = []
    targets = []
    for name, writer in (("rows-only", None), ("with-objects", lambda *_object: written.append(_object))):
        url = f"sqlite:///{tmp_path / name}.db"
        upgrade(url)
        engine = create_db_engine(url)
        with engine.begin() as connection:
            targets.append(seed_demo(connection, writer))
        engine.dispose()
    assert written
    assert targets[0] == targets[1]


def test_the_demo_messages_end_as_the_script_says(project_env, platform_db, local_aws, instance, tmp_path):
    s3 = local_aws.client("s3")
    with http_object_writer(s3) as write, platform_db.begin() as connection:
        targets = seed_demo(connection, write)
    messages = {message.name: message for message in demo_messages(targets)}
    assert list(messages) == ["delete-packages", "delete-dataset", "changelog", "bad-deletion"]

    for message in messages.values():
        for arguments in message.commands:
            sent = CliRunner().invoke(main, list(arguments), catch_exceptions=False)
            assert sent.exit_code == 0, sent.output
    requests = intake_tick(instance, local_aws).run_requests
    assert sorted(request.job_name for request in requests) == [
        "dataset_changelog_job",
        "delete_dataset_job",
        "delete_package_job",
    ]
    runs = {request.job_name: run_request(instance, request) for request in requests}
    assert all(run.success for run in runs.values())

    with platform_db.begin() as connection:
        packages = states(connection, Package)
        dataset_left = connection.execute(
            sa.select(Dataset.state).where(Dataset.id == targets.dataset_id)
        ).scalar()
        events = connection.execute(
            sa.select(DatasetChangelogEvent.event_type, DatasetChangelogEvent.published_at).where(
                DatasetChangelogEvent.dataset_id == targets.changelog_dataset_id
            )
        ).all()
    assert {packages[p] for p in targets.package_ids} == {"DELETED"}
    assert list(packages.values()).count("DELETED") == targets.deleting_package_count
    assert list(packages.values()).count("DELETING") == 0
    assert dataset_left is None
    assert [(kind, published is not None) for kind, published in events] == [("UPDATE_NAME", True)]

    (letter,) = dead_letters(local_aws, keep=True)
    assert letter["dead_lettered_by"] == "run"
    assert letter["run_id"] == runs["delete_package_job"].run_id
    assert f"package_id {targets.refused_package_id}" in letter["reason"]
    assert "not DELETING" in letter["reason"]
    assert packages[targets.refused_package_id] == "READY"

    # The fix the script offers, then the redrive the README walks through.
    with platform_db.begin() as connection:
        mark_package_deleting(connection, targets.refused_package_id)
    redriven = CliRunner().invoke(main, ["dlq", "redrive"], catch_exceptions=False)
    assert "redrove 1 message(s)" in redriven.output
    (replay,) = intake_tick(instance, local_aws).run_requests
    assert run_request(instance, replay).success
    with platform_db.begin() as connection:
        assert states(connection, Package)[targets.refused_package_id] == "DELETED"
    assert dead_letters(local_aws) == []


def test_the_script_sends_each_message_with_the_commands_listed(tmp_path):
    targets = DemoTargets(
        organization_id=1,
        user_node_id="N:user:it's",
        package_ids=(2, 13),
        deleting_package_count=5,
        dataset_id=2,
        changelog_dataset_id=1,
        changelog_dataset_name='Dataset "1"',
        refused_package_id=1,
    )
    recorder = tmp_path / "bin" / "jobs-orchestration"
    recorder.parent.mkdir()
    # Stands in for the command: records its arguments, one line each, NUL-separated.
    recorder.write_text('#!/usr/bin/env bash\nprintf "%s\\0" "$@" >> "$RECORD"; printf "\\n" >> "$RECORD"\n')
    recorder.chmod(0o755)
    script = tmp_path / "local" / "demo-messages.sh"
    script.parent.mkdir()
    script.write_text(demo_script(targets, recorder))
    record = tmp_path / "record"

    missing_env = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    assert missing_env.returncode == 1 and "start the stack first" in missing_env.stderr

    (script.parent / "env").write_text(f"export RECORD={shlex.quote(str(record))}\n")
    sent = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    assert sent.returncode == 0, sent.stderr
    recorded = [tuple(line.split("\0")[:-1]) for line in record.read_text().splitlines()]
    expected = [arguments for message in demo_messages(targets) for arguments in message.commands]
    assert recorded == expected

    unknown = subprocess.run(["bash", str(script), "delete-everything"], capture_output=True, text=True)
    assert unknown.returncode == 2 and "unknown demo message delete-everything" in unknown.stderr


def test_marking_a_missing_package_deleting_changes_nothing(platform_db):
    with platform_db.begin() as connection:
        with pytest.raises(ValueError, match="package 424242 does not exist: nothing changed"):
            mark_package_deleting(connection, 424242)
        assert connection.execute(sa.select(sa.func.count()).select_from(Package)).scalar() == 0
