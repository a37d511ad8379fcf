"""Throughput of the SQS intake through the real Dagster daemon and run launcher, against a bare loop.

Puts changelog messages, then small package deletions, on a moto server through a producer paced to
keep the backlog under `--backlog` messages (moto's SQS scans the whole queue on every call, so a deep
backlog would measure moto). A `dagster-daemon` with a temporary DAGSTER_HOME (the project's
dagster.yaml, SQLite storage) runs the code location once per batch size:

- `--jobs real` (default): the project's own code location against a fresh PostgreSQL database seeded
  with the organizations, datasets, user and DELETING packages (objects in moto's S3) the messages
  name, so every run records, publishes and deletes for real, and the other sensors run too;
- `--jobs stand-in`: `benchmarks/queue_intake_defs.py`, jobs with the contract names that make the
  per-message AWS calls and no database work.

The producer starts once the sensor has ticked (the daemon and its code server are up) and the runs
that set up the seeded organizations are over; time runs from the first enqueue to the end of the
last run the messages started (the storage refreshes that deletions set off share the machine
meanwhile). Batch size 1 takes a run per message, so it gets `--batch1-messages` of the same mix (a
rate, compared as a rate).

The ceiling is a loop making the same AWS calls per message (receive, delete, publish) against the same
emulator and backlog, with no Dagster and no database.

    /work/main/.venv/bin/python benchmarks/queue_intake.py --scale 0.1      # quick
    /work/main/.venv/bin/python benchmarks/queue_intake.py                  # 2,000 + 500 messages
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dagster as dg  # noqa: E402
from dagster._core.storage.dagster_run import NOT_FINISHED_STATUSES  # noqa: E402
from dagster._daemon.sensor import MIN_INTERVAL_LOOP_TIME  # noqa: E402
import sqlalchemy as sa  # noqa: E402
import yaml  # noqa: E402

from jobs_orchestration.db.engine import create_db_engine  # noqa: E402
from jobs_orchestration.db.migrate import upgrade  # noqa: E402
from jobs_orchestration.db.platform import Dataset, Package, PackageState, User  # noqa: E402

from jobs_orchestration.devstack.aws import LocalAws, provision, reset_moto, start_moto_server  # noqa: E402
from jobs_orchestration.devstack.seed import SeedSizes, moto_backend_object_writer, seed_platform  # noqa: E402
from jobs_orchestration.devstack.stack import local_instance_config  # noqa: E402
from jobs_orchestration.defs.intake.sensor import DEFAULT_INTERVAL_SECONDS  # noqa: E402
from jobs_orchestration.defs.job_messages import sources_in  # noqa: E402
from jobs_orchestration.intake.handoff import SQS_MAX_BATCH, IntakeLimits, QueueIntake  # noqa: E402
from jobs_orchestration_tests.support.postgres import temporary_database  # noqa: E402

DEFAULT_BATCH_SIZE = IntakeLimits().batch_size
JOB_QUEUE = dg.AssetKey("job_queue")


def mixed(messages: list[str], count: int) -> list[str]:
    """`count` messages with the full list's share of each kind."""
    step = len(messages) / count
    return [messages[int(index * step)] for index in range(count)]


@dataclass(frozen=True)
class Targets:
    """What the messages name: (organization, dataset) pairs for changelog events, (organization,
    package) pairs for deletions, and the user who asks."""

    datasets: list[tuple[int, int]]
    packages: list[tuple[int, int]]
    user_node_id: str = "N:user:bench"


def made_up_targets(changelog: int, deletions: int) -> Targets:
    """Ids for the stand-in jobs, which look nothing up."""
    return Targets(
        datasets=[(1 + i % 5, 1000 + i) for i in range(changelog)],
        packages=[(1 + i % 5, 50_000 + i) for i in range(deletions)],
    )


def bodies(targets: Targets, changelog: int, deletions: int) -> list[str]:
    messages = [
        json.dumps(
            {
                "DatasetChangelogEventJob": {
                    "organizationId": organization_id,
                    "datasetId": dataset_id,
                    "userId": targets.user_node_id,
                    "traceId": f"bench-c{i}",
                    "events": [
                        {"eventType": "UPDATE_NAME", "eventDetail": {"oldName": "a", "newName": f"b{i}"}}
                    ],
                    "id": f"bench-changelog-{i}",
                }
            }
        )
        for i, (organization_id, dataset_id) in enumerate(
            targets.datasets[i % len(targets.datasets)] for i in range(changelog)
        )
    ]
    messages += [
        json.dumps(
            {
                "DeletePackageJob": {
                    "packageId": package_id,
                    "organizationId": organization_id,
                    "userId": targets.user_node_id,
                    "traceId": f"bench-p{i}",
                    "id": f"bench-delete-{i}",
                }
            }
        )
        for i, (organization_id, package_id) in enumerate(targets.packages[:deletions])
    ]
    return messages


def seed_platform_for(database_url: str, deletions: int) -> Targets:
    """A platform database for the real jobs: five organizations with datasets, a user, and
    `deletions` DELETING packages of one file each (objects written into moto's backend)."""
    upgrade(database_url)
    engine = create_db_engine(database_url)
    sizes = SeedSizes(
        organizations=5,
        users=1,
        datasets_per_organization=4,
        packages_per_dataset=max(1, -(-deletions // 20)),
        files_per_package=1,
        depth=1,
        timeseries_per_dataset=0,
    )
    try:
        with engine.begin() as connection:
            seed_platform(connection, sizes, moto_backend_object_writer())
            packages = connection.execute(
                sa.select(Package.organization_id, Package.id).order_by(Package.id).limit(deletions)
            ).all()
            connection.execute(
                sa.update(Package)
                .where(Package.id.in_([package_id for _, package_id in packages]))
                .values(state=PackageState.DELETING)
            )
            datasets = connection.execute(sa.select(Dataset.organization_id, Dataset.id)).all()
            user = connection.execute(sa.select(User.node_id)).scalar_one()
    finally:
        engine.dispose()
    return Targets([tuple(d) for d in datasets], [tuple(p) for p in packages], user)


class PacedProducer(threading.Thread):
    """Sends in batches of 10 whenever the visible backlog is under the limit."""

    def __init__(self, aws: LocalAws, messages: list[str], backlog: int) -> None:
        super().__init__(daemon=True)
        self.aws, self.messages, self.backlog = aws, messages, backlog
        self.started_at: float | None = None
        self.finished_at: float | None = None

    def run(self) -> None:
        sqs = self.aws.client("sqs")
        sent = 0
        while sent < len(self.messages):
            depth = int(
                sqs.get_queue_attributes(
                    QueueUrl=self.aws.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
                )["Attributes"]["ApproximateNumberOfMessages"]
            )
            if depth + 10 > self.backlog:
                time.sleep(0.05)
                continue
            chunk = self.messages[sent : sent + 10]
            if self.started_at is None:
                self.started_at = time.time()
            sqs.send_message_batch(
                QueueUrl=self.aws.queue_url,
                Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(chunk)],
            )
            sent += len(chunk)
        self.finished_at = time.time()


def publish(sns, topic_arn: str, bodies: list[str]) -> None:
    """Publish the bodies as the changelog job does: PublishBatch, 10 a call."""
    for start in range(0, len(bodies), SQS_MAX_BATCH):
        chunk = bodies[start : start + SQS_MAX_BATCH]
        sns.publish_batch(
            TopicArn=topic_arn,
            PublishBatchRequestEntries=[{"Id": str(i), "Message": body} for i, body in enumerate(chunk)],
        )


def ceiling(aws: LocalAws, messages: list[str], backlog: int) -> float:
    """Messages per second of a bare receive / publish / delete loop."""
    producer = PacedProducer(aws, messages, backlog)
    producer.start()
    sqs, sns = aws.client("sqs"), aws.client("sns")
    done = 0
    while done < len(messages):
        received = sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )
        if not received:
            continue
        publish(sns, aws.topic_arn, [m["Body"] for m in received if "DatasetChangelogEventJob" in m["Body"]])
        sqs.delete_message_batch(
            QueueUrl=aws.queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(received)],
        )
        done += len(received)
    assert producer.started_at is not None
    return done / (time.time() - producer.started_at)


def without_dagster(aws: LocalAws, messages: list[str], backlog: int) -> float:
    """Messages per second of the intake's own tick (`QueueIntake`, default limits) driven by a plain
    loop on the sensor daemon's cadence (a tick starts on a 5 s mark once the previous one is over),
    every requested run taken to exist at once and the changelog messages published inline: the
    two-phase acknowledgement and the tick limits, without what Dagster costs per tick and per run."""
    producer = PacedProducer(aws, messages, backlog)
    producer.start()
    sqs, sns = aws.client("sqs"), aws.client("sns")
    intake = QueueIntake(sqs, aws.queue_url, aws.dead_letter_queue_url)
    cursor, acknowledged = None, 0
    while acknowledged < len(messages):
        started = time.monotonic()
        result = intake.tick(cursor, run_exists=lambda run_key: True, route=lambda batch: batch)
        cursor, acknowledged = result.cursor, acknowledged + result.acknowledged
        publish(
            sns,
            aws.topic_arn,
            [
                member.body
                for batch in result.requests
                if batch.type_name == "DatasetChangelogEventJob"
                for member in batch.members
            ],
        )
        elapsed = time.monotonic() - started
        time.sleep(MIN_INTERVAL_LOOP_TIME * max(1, math.ceil(elapsed / MIN_INTERVAL_LOOP_TIME)) - elapsed)
    assert producer.started_at is not None
    return acknowledged / (time.time() - producer.started_at)


def through_dagster(
    aws: LocalAws, args: argparse.Namespace, batch_size: int, changelog: int, deletions: int
) -> tuple[float, int, int]:
    """Messages per second through the daemon, the number of runs it took, and the messages sent."""
    with contextlib.ExitStack() as stack:
        home = stack.enter_context(
            tempfile.TemporaryDirectory(prefix="queue-intake-bench-", ignore_cleanup_errors=True)
        )
        environment = {
            **os.environ,
            **aws.environment(),
            "DAGSTER_HOME": home,
            "PYTHONPATH": str(ROOT),
            "JOBS_INTAKE_BATCH_SIZE": str(batch_size),
            "JOBS_INTAKE_INTERVAL_SECONDS": str(args.interval),
        }
        if args.jobs == "real":
            database_url = stack.enter_context(temporary_database("intake_bench"))
            targets = seed_platform_for(database_url, deletions)
            environment |= {
                "JOBS_DATABASE_URL": database_url,
                "SNAPSHOT_STORAGE_URL": Path(home, "snapshots").as_uri(),
            }
        else:
            targets = made_up_targets(changelog, deletions)
        messages = bodies(targets, changelog, deletions)
        if batch_size == 1:
            messages = mixed(messages, min(args.batch1_messages, len(messages)))
        config = local_instance_config()
        config["concurrency"]["runs"]["max_concurrent_runs"] = args.parallelism
        Path(home, "dagster.yaml").write_text(yaml.safe_dump(config))
        module = "jobs_orchestration.definitions" if args.jobs == "real" else "benchmarks.queue_intake_defs"
        Path(home, "workspace.yaml").write_text(
            f"load_from:\n  - python_module:\n      module_name: {module}\n"
            f"      working_directory: {ROOT}\n"
        )
        # Create the instance's storage here, before the daemon and its code server race to do it.
        dg.DagsterInstance.from_config(home).dispose()
        with open(Path(home, "daemon.log"), "w") as log:
            rate, runs = _measure(aws, messages, args, batch_size, home, environment, log)
        return rate, runs, len(messages)


def _measure(aws, messages, args, batch_size, home, environment, log) -> tuple[float, int]:
    daemon = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("dagster-daemon")),
            "run",
            "-w",
            str(Path(home, "workspace.yaml")),
        ],
        cwd=ROOT,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        instance = dg.DagsterInstance.from_config(home)
        deadline = time.time() + args.timeout
        while not instance.fetch_observations(JOB_QUEUE, limit=1).records:
            if time.time() > deadline or daemon.poll() is not None:
                raise RuntimeError(f"the sensor never ticked (daemon exit {daemon.poll()}): {_tail(log.name)}")
            time.sleep(0.5)
        # The seeded organizations' first storage refreshes are setup, not intake: start once they are done.
        while instance.get_run_records(filters=dg.RunsFilter(statuses=NOT_FINISHED_STATUSES), limit=1):
            if time.time() > deadline or daemon.poll() is not None:
                raise RuntimeError(f"setup runs never finished (daemon exit {daemon.poll()}): {_tail(log.name)}")
            time.sleep(0.5)
        producer = PacedProducer(aws, messages, args.backlog)
        producer.start()
        while True:
            records = instance.get_run_records(
                filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE])
            )
            failed = [r for r in records if r.dagster_run.status == dg.DagsterRunStatus.FAILURE]
            if failed:
                raise RuntimeError(f"{len(failed)} run(s) failed: {_tail(log.name)}")
            # Runs the messages started; the real code location also starts storage refreshes.
            message_runs = [r for r in records if message_count(r.dagster_run)]
            finished = sum(message_count(r.dagster_run) for r in message_runs)
            if finished >= len(messages):
                break
            if time.time() > deadline or daemon.poll() is not None:
                raise RuntimeError(
                    f"batch size {batch_size}: {finished}/{len(messages)} messages done when stopped "
                    f"(daemon exit {daemon.poll()}): {_tail(log.name)}"
                )
            time.sleep(1)
        last_end = max(r.end_time for r in message_runs if r.end_time)
        assert producer.started_at is not None
        durations = [r.end_time - r.start_time for r in message_runs if r.end_time and r.start_time]
        print(
            f"  batch size {batch_size}: {len(message_runs)} runs, {sum(durations) / len(durations):.1f} s "
            f"per run (start to end), {last_end - producer.started_at:.1f} s in all; "
            f"{len(records) - len(message_runs)} other runs",
            flush=True,
        )
        last = max((r for r in message_runs if r.end_time), key=lambda r: r.end_time)
        assert producer.finished_at is not None and last.start_time is not None
        print(
            f"  last message sent at {producer.finished_at - producer.started_at:.1f} s; the last run to end was "
            f"created at {last.create_timestamp.timestamp() - producer.started_at:.1f} s, started at "
            f"{last.start_time - producer.started_at:.1f} s ({last.dagster_run.job_name}, "
            f"{message_count(last.dagster_run)} messages)",
            flush=True,
        )
        print_ticks(instance, producer.started_at, last_end)
        print_runs(records, producer.started_at)
        return finished / (last_end - producer.started_at), len(message_runs)
    finally:
        stop_process_group(daemon)


def message_count(run: dg.DagsterRun) -> int:
    """Job messages the run holds (its config lists them)."""
    return len(sources_in(run.run_config))


def print_runs(records: list, start: float) -> None:
    """Each run's job, messages and its created / started / ended times, seconds from the first send."""
    lines = []
    for record in sorted(records, key=lambda r: r.create_timestamp.timestamp()):
        run = record.dagster_run
        label = message_count(run) or run.tags.get("organization_id", "")
        times = [record.create_timestamp.timestamp(), record.start_time, record.end_time]
        lines.append(f"{run.job_name}[{label}] " + "/".join(f"{t - start:.0f}" if t else "-" for t in times))
    print("  runs (job[messages or organization] created/started/ended): " + " ".join(lines), flush=True)


def print_ticks(instance: dg.DagsterInstance, start: float, end: float) -> None:
    """What the sensor did while the benchmark ran: its ticks' durations and the gaps between them."""
    states = [s for s in instance.all_instigator_state() if s.name == "sqs_jobs_sensor"]
    if not states:
        return
    ticks = sorted(
        (
            t
            for t in instance.get_ticks(states[0].instigator_origin_id, states[0].selector_id, after=start)
            if t.end_timestamp and t.timestamp <= end
        ),
        key=lambda t: t.timestamp,
    )
    if len(ticks) < 2:
        return
    durations = [t.end_timestamp - t.timestamp for t in ticks]
    observations = [
        e.asset_observation.metadata  # type: ignore[union-attr]
        for e in instance.fetch_observations(JOB_QUEUE, limit=10_000, ascending=True).records
        if start <= e.timestamp <= end
    ]
    per_tick = [(int(o["received"].value), float(o["tick_seconds"].value)) for o in observations]
    received = [count for count, _ in per_tick]
    gaps = [b.timestamp - a.end_timestamp for a, b in zip(ticks, ticks[1:])]
    print(
        f"  {len(ticks)} sensor ticks: {sum(durations) / len(durations):.1f} s each (max {max(durations):.1f}), "
        f"{sum(gaps) / len(gaps):.1f} s idle between (max {max(gaps):.1f}); "
        f"{sum(len(t.run_ids) for t in ticks)} runs requested; "
        f"queue work {sum(seconds for _, seconds in per_tick):.0f} s in all, "
        f"received per tick {sum(received) / max(len(received), 1):.0f} (max {max(received, default=0)})",
        flush=True,
    )
    print(
        "  per tick (received / seconds of queue work / seconds in all / runs): "
        + " ".join(
            f"{count}/{seconds:.1f}/{tick.end_timestamp - tick.timestamp:.1f}/{len(tick.run_ids)}"
            for (count, seconds), tick in zip(per_tick, ticks)
        ),
        flush=True,
    )


def stop_process_group(process: subprocess.Popen) -> None:
    """Stop the daemon and what it started (code server, runs): all share its process group."""
    os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=30)
    time.sleep(1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # stragglers that outlived the daemon
    process.wait()


def _tail(path: str, lines: int = 30) -> str:
    return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="Fraction of 2,000 changelog + 500 deletions"
    )
    parser.add_argument(
        "--batch-sizes",
        default=f"1,{DEFAULT_BATCH_SIZE}",
        help=f"Comma-separated batch sizes to run (the default size is {DEFAULT_BATCH_SIZE})",
    )
    parser.add_argument(
        "--batch1-messages", type=int, default=100, help="Messages (of the same mix) for batch size 1"
    )
    parser.add_argument("--backlog", type=int, default=100, help="Producer keeps the queue under this")
    parser.add_argument("--parallelism", type=int, default=10, help="Runs at once (the old PARALLELISM)")
    parser.add_argument(
        "--interval", type=int, default=DEFAULT_INTERVAL_SECONDS, help="Sensor minimum interval, seconds"
    )
    parser.add_argument(
        "--jobs",
        choices=["real", "stand-in"],
        default="real",
        help="real: the project's code location on a seeded PostgreSQL database; stand-in: "
        "benchmarks/queue_intake_defs.py (the same AWS calls, no database)",
    )
    parser.add_argument("--timeout", type=float, default=3600, help="Give up on one batch size after this")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log

    changelog, deletions = round(2000 * args.scale), round(500 * args.scale)
    server, endpoint = start_moto_server()
    try:
        figures: dict[str, float] = {}
        reset_moto(endpoint)
        messages = bodies(made_up_targets(changelog, deletions), changelog, deletions)
        figures["ceiling"] = ceiling(provision(endpoint), messages, args.backlog)
        print(f"{len(messages)} messages; ceiling (bare loop): {figures['ceiling']:.1f} msg/s", flush=True)
        reset_moto(endpoint)
        figures["intake without Dagster"] = without_dagster(provision(endpoint), messages, args.backlog)
        print(
            f"intake's tick on the daemon's {MIN_INTERVAL_LOOP_TIME} s loop, without Dagster: "
            f"{figures['intake without Dagster']:.1f} msg/s",
            flush=True,
        )
        for size in (int(s) for s in args.batch_sizes.split(",")):
            reset_moto(endpoint)
            rate, runs, sent = through_dagster(provision(endpoint), args, size, changelog, deletions)
            figures[f"batch {size}"] = rate
            print(f"batch size {size}: {sent} messages, {rate:.2f} msg/s in {runs} runs", flush=True)
    finally:
        server.stop()
    sizes = [name for name in figures if name.startswith("batch ")]
    print(f"intake without Dagster: {figures['intake without Dagster'] / figures['ceiling']:.1%} of the ceiling")
    for name in sizes:
        print(
            f"{name}: {figures[name] / figures['ceiling']:.1%} of the ceiling, "
            f"{figures[name] / figures['intake without Dagster']:.1%} of the intake without Dagster"
        )
    if "batch 1" in figures:
        for name in sizes:
            if name != "batch 1":
                print(f"{name} / batch 1: {figures[name] / figures['batch 1']:.1f}x")


if __name__ == "__main__":
    main()
