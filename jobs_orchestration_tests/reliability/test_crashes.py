"""Crashes at random moments: the worker doing the work is killed with SIGKILL and started again, and
afterwards every message's work is complete, none is lost or done twice, nothing that had to stay is
gone and nothing is left half-deleted. `JOBS_CRASH_COUNT` sets the crashes per scenario (3 here; the
long run, `python -m jobs_orchestration_tests.reliability.long_run`, does 20 and crashes the real
daemon and run workers as well)."""

from __future__ import annotations

import os
import random

import pytest

from jobs_orchestration_tests.support.crash_scenarios import (
    CrashTally,
    dataset_deletion_crashes,
    format_table,
    intake_crashes,
    snapshot_cleanup_crashes,
)

CRASHES = int(os.environ.get("JOBS_CRASH_COUNT", "3"))


@pytest.fixture
def rng() -> random.Random:
    seed = int(os.environ.get("JOBS_CRASH_SEED", random.randrange(1_000_000)))
    print(f"crash seed {seed} (JOBS_CRASH_SEED={seed} repeats these moments)")
    return random.Random(seed)


def _report(tally: CrashTally) -> None:
    print()
    print(format_table([tally]))
    assert tally.problems == []
    assert tally.sound
    assert tally.completed == tally.sent


def test_a_dataset_deletion_killed_mid_way_is_finished_by_the_next_run(platform_db, local_aws, rng) -> None:
    tally = dataset_deletion_crashes(platform_db.engine, platform_db.url, local_aws, crashes=CRASHES, rng=rng)
    _report(tally)
    assert tally.crashes >= 1, "no kill landed while the deletion was working"


def test_a_snapshot_cleanup_killed_between_mark_and_purge_leaves_nothing_half_done(
    email_parser_db, snapshot_root, rng
) -> None:
    tally = snapshot_cleanup_crashes(
        email_parser_db.engine, email_parser_db.url, snapshot_root, crashes=CRASHES, rng=rng
    )
    _report(tally)
    assert tally.crashes >= 1, "no kill landed while the cleanup was working"


def test_an_intake_killed_during_its_ticks_loses_and_duplicates_no_message(platform_db, local_aws, rng) -> None:
    tally = intake_crashes(platform_db.engine, platform_db.url, local_aws, crashes=CRASHES, rng=rng)
    _report(tally)
