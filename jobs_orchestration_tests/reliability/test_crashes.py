"""Crashes: the worker doing the work is killed with SIGKILL and started again, and afterwards every
message's work is complete, none is lost or done twice, nothing that had to stay is gone and nothing
is left half-deleted. Each scenario kills once at a set point inside its most dangerous window, then
at random moments (`JOBS_CRASH_COUNT`, 2 here; the long run,
`python -m jobs_orchestration_tests.reliability.long_run`, does 20 and crashes the real daemon and run
workers as well), and prints each kill with the state it left. A real run worker killed in its step
is in test_end_to_end.py, which starts the whole system once for both of its tests."""

from __future__ import annotations

import os
import random

import pytest

from jobs_orchestration_tests.support.crash_scenarios import (
    CrashTally,
    Landed,
    dataset_deletion_crashes,
    format_table,
    intake_crashes,
    snapshot_cleanup_crashes,
)

CRASHES = int(os.environ.get("JOBS_CRASH_COUNT", "2"))


@pytest.fixture
def rng() -> random.Random:
    seed = int(os.environ.get("JOBS_CRASH_SEED", random.randrange(1_000_000)))
    print(f"crash seed {seed} (JOBS_CRASH_SEED={seed} repeats these moments)")
    return random.Random(seed)


def _report(tally: CrashTally) -> None:
    print()
    print(format_table([tally]))
    for kill in tally.kills:
        print(f"  {kill}")
    assert tally.problems == []
    assert tally.sound
    assert tally.completed == tally.sent


def _assert_the_set_point_kill_landed_in_the_window(tally: CrashTally) -> None:
    assert len(tally.set_point_kills) == 1, tally.problems
    kill = tally.set_point_kills[0]
    assert kill.landed is Landed.MID_WORK, kill
    assert kill.in_window > 0, kill


def test_a_dataset_deletion_killed_mid_way_is_finished_by_the_next_run(platform_db, local_aws, rng) -> None:
    tally = dataset_deletion_crashes(platform_db.engine, platform_db.url, local_aws, crashes=CRASHES, rng=rng)
    _report(tally)
    # Killed right after a DeleteObjects call returned: objects gone, the rows naming them still there.
    _assert_the_set_point_kill_landed_in_the_window(tally)


def test_a_snapshot_cleanup_killed_between_mark_and_purge_leaves_nothing_half_done(
    email_parser_db, snapshot_root, rng
) -> None:
    tally = snapshot_cleanup_crashes(
        email_parser_db.engine, email_parser_db.url, snapshot_root, crashes=CRASHES, rng=rng
    )
    _report(tally)
    # Killed just before a purge committed: files gone under rows still marked, not purged.
    _assert_the_set_point_kill_landed_in_the_window(tally)


def test_an_intake_killed_during_its_ticks_loses_and_duplicates_no_message(
    platform_db, local_aws, rng
) -> None:
    tally = intake_crashes(platform_db.engine, platform_db.url, local_aws, crashes=CRASHES, rng=rng)
    _report(tally)
    # Killed once runs existed and before their messages were deleted from the queue.
    _assert_the_set_point_kill_landed_in_the_window(tally)


def test_the_intake_check_counts_a_message_that_asks_for_a_second_run(platform_db, local_aws, rng) -> None:
    """The check can fail: an intake that loses its cursor after the set-point kill asks again for the
    runs of the messages it had not acknowledged, and the tally counts each as duplicated."""
    tally = intake_crashes(
        platform_db.engine, platform_db.url, local_aws, crashes=0, rng=rng, lose_cursor=True
    )
    print()
    print(format_table([tally]))
    assert tally.lost == 0
    assert tally.duplicated == tally.set_point_kills[0].in_window > 0
