"""The long crash run: `python -m jobs_orchestration_tests.reliability.long_run --crashes 20`.

First the crash scenarios of the test suite, each with a kill at its set point and `--crashes` kills
at random moments (the deletion, the snapshot cleanup and the intake in child processes killed with
SIGKILL); then the whole system (moto, PostgreSQL, code server, webserver, daemon) with
`--system-crashes` kills of each kind: the daemon during a sensor tick, a run worker in the middle of
a dataset deletion, the snapshot cleanup's run worker between marking and purging. Prints each kill
with the state it left, and the table: kills by that state (nothing started, mid-work, in the
scenario's dangerous window, after the last write); exits 1 if any message was lost or done twice,
anything that had to stay was deleted, or anything was left half-deleted.

Needs PostgreSQL on 127.0.0.1:5432 (as the tests do); creates and drops its own databases.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from jobs_orchestration.db.engine import create_db_engine
from jobs_orchestration.db.migrate import upgrade
from jobs_orchestration.devstack.aws import LOCAL_CREDENTIALS, provision, start_moto_server
from jobs_orchestration_tests.support import crash_scenarios, system_crashes
from jobs_orchestration_tests.support.crash_scenarios import CrashTally, format_table
from jobs_orchestration_tests.support.postgres import temporary_database
from jobs_orchestration_tests.support.running_system import RunningSystem


def component_crashes(crashes: int, rng: random.Random, workdir: Path) -> list[CrashTally]:
    server, endpoint = start_moto_server()
    try:
        aws = provision(endpoint)
        with temporary_database("jobs_crash") as url:
            upgrade(url)
            engine = create_db_engine(url)
            try:
                snapshot_root = workdir / "snapshots"
                snapshot_root.mkdir()
                return [
                    crash_scenarios.dataset_deletion_crashes(engine, url, aws, crashes=crashes, rng=rng),
                    crash_scenarios.snapshot_cleanup_crashes(
                        engine, url, snapshot_root, crashes=crashes, rng=rng
                    ),
                    crash_scenarios.intake_crashes(engine, url, aws, crashes=crashes, rng=rng),
                ]
            finally:
                engine.dispose()
    finally:
        server.stop()


def whole_system_crashes(crashes: int, rng: random.Random, workdir: Path) -> list[CrashTally]:
    with RunningSystem(workdir / "system") as system:
        return [
            system_crashes.daemon_crashes(system, crashes=crashes, rng=rng),
            system_crashes.run_worker_crashes(system, crashes=crashes, rng=rng),
            system_crashes.snapshot_cleanup_crashes(system, crashes=crashes, rng=rng),
        ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--crashes", type=int, default=20, help="kills per component scenario (20)")
    parser.add_argument(
        "--system-crashes", type=int, default=None, help="kills per whole-system scenario (as --crashes)"
    )
    parser.add_argument("--seed", type=int, default=None, help="repeat the random moments of an earlier run")
    arguments = parser.parse_args(argv)
    if arguments.crashes < 0 or (arguments.system_crashes or 0) < 0:
        parser.error("crash counts must not be negative")
    system_count = arguments.crashes if arguments.system_crashes is None else arguments.system_crashes
    seed = arguments.seed if arguments.seed is not None else random.randrange(1_000_000)
    rng = random.Random(seed)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.update(LOCAL_CREDENTIALS)

    started = time.monotonic()
    tallies: list[CrashTally] = []
    with tempfile.TemporaryDirectory(prefix="jobs-crash-") as directory:
        workdir = Path(directory)
        if arguments.crashes:
            tallies += component_crashes(arguments.crashes, rng, workdir)
            print(format_table(tallies), flush=True)
        if system_count:
            tallies += whole_system_crashes(system_count, rng, workdir)
    print(f"seed {seed}; {time.monotonic() - started:.0f} s")
    print(format_table(tallies))
    problems = [problem for tally in tallies for problem in tally.problems]
    for problem in problems[:50]:
        print(f"  {problem}")
    return 0 if all(tally.sound for tally in tallies) else 1


if __name__ == "__main__":
    sys.exit(main())
