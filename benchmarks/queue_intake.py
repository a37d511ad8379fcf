"""Throughput and latency of the SQS intake through the real Dagster daemon and run launcher, against
a bare loop, on moto and on LocalStack (`--aws moto|localstack|both`; `make localstack` installs it).

For each emulator (started and stopped here, reset to fresh queues, topics and buckets per part):

- the ceiling: a loop making the same AWS calls per message (receive, delete, publish) against the
  same emulator and backlog, with no Dagster and no database;
- the intake's own tick (`QueueIntake`) on the sensor daemon's loop, without Dagster;
- the mixed run: 2,000 changelog events and 500 package deletions through a producer paced to keep
  the backlog under `--backlog` messages (moto's SQS scans the whole queue on every call, so a deep
  backlog would measure moto);
- the production rate run: `--rate-messages` changelog events offered at `--rate` a second with no
  backlog limit, and the time from each message's send to its event's publication on SNS (not run
  where the emulator's ceiling is below the rate).

A `dagster-daemon` with a temporary DAGSTER_HOME (the project's dagster.yaml, SQLite storage) runs:

- `--jobs real` (default): the project's own code location against a fresh PostgreSQL database seeded
  with the organizations, datasets, user and DELETING packages (objects in the emulator's S3) the
  messages name, so every run records, publishes and deletes for real, and the other sensors run too;
- `--jobs stand-in`: `benchmarks/queue_intake_defs.py`, jobs with the contract names that make the
  per-message AWS calls and no database work.

The producer starts once the sensor has ticked (the daemon and its code server are up) and the runs
that set up the seeded organizations are over; time runs from the first send to the end of the last
run the messages started (the storage refreshes that deletions set off share the machine meanwhile).
Each part prints the sensor's ticks, where each run's time went (first send to created, created to
started, started to ended) and every run's times.

    .venv/bin/python benchmarks/queue_intake.py --aws localstack --scale 0.1 --rate-messages 1000  # quick
    .venv/bin/python benchmarks/queue_intake.py                                                   # full
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dagster as dg  # noqa: E402
import psutil  # noqa: E402
import sqlalchemy as sa  # noqa: E402
import yaml  # noqa: E402
from dagster._core.storage.dagster_run import NOT_FINISHED_STATUSES  # noqa: E402
from dagster._daemon.sensor import MIN_INTERVAL_LOOP_TIME  # noqa: E402

from jobs_orchestration import settings  # noqa: E402
from jobs_orchestration.aws.batching import SQS_BATCH  # noqa: E402
from jobs_orchestration.db.engine import create_db_engine  # noqa: E402
from jobs_orchestration.db.migrate import upgrade  # noqa: E402
from jobs_orchestration.db.platform import (  # noqa: E402
    Dataset,
    DatasetChangelogEvent,
    Package,
    PackageState,
    User,
)
from jobs_orchestration.defs.job_messages import sources_in  # noqa: E402
from jobs_orchestration.devstack.aws import LocalAws, provision, reset_moto, start_moto_server  # noqa: E402
from jobs_orchestration.devstack.localstack import reset_localstack, running_localstack  # noqa: E402
from jobs_orchestration.devstack.seed import (  # noqa: E402
    ObjectWriter,
    SeedSizes,
    http_object_writer,
    moto_backend_object_writer,
    seed_platform,
)
from jobs_orchestration.devstack.stack import local_instance_config  # noqa: E402
from jobs_orchestration.intake.handoff import IntakeLimits, QueueIntake  # noqa: E402
from jobs_orchestration_tests.support.postgres import temporary_database  # noqa: E402

DEFAULT_BATCH_SIZE = IntakeLimits().batch_size
DEFAULT_CHANGELOG_BATCH_SIZE = IntakeLimits().changelog_batch_size
JOB_QUEUE = dg.AssetKey("job_queue")
SEEDED_ORGANIZATIONS = 5


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


def seed_platform_for(database_url: str, deletions: int, write_object: ObjectWriter) -> Targets:
    """A platform database for the real jobs: five organizations with datasets, a user, and
    `deletions` DELETING packages of one file each (objects written by `write_object`)."""
    upgrade(database_url)
    engine = create_db_engine(database_url)
    sizes = SeedSizes(
        organizations=SEEDED_ORGANIZATIONS,
        users=1,
        datasets_per_organization=4,
        packages_per_dataset=max(1, -(-deletions // 20)),
        files_per_package=1,
        depth=1,
        timeseries_per_dataset=0,
    )
    try:
        with engine.begin() as connection:
            seed_platform(connection, sizes, write_object)
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
    """Sends in batches of 10, at most `rate` messages a second (when given), whenever the visible
    backlog is under `backlog` (when given); remembers when each message was sent."""

    def __init__(
        self, aws: LocalAws, messages: list[str], backlog: int | None, rate: float | None = None
    ) -> None:
        super().__init__(daemon=True)
        self.aws, self.messages, self.backlog, self.rate = aws, messages, backlog, rate
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.sent_at: list[float] = []

    def run(self) -> None:
        sqs = self.aws.client("sqs")
        sent = 0
        while sent < len(self.messages):
            if self.rate and self.started_at is not None:
                delay = self.started_at + sent / self.rate - time.time()
                if delay > 0:
                    time.sleep(delay)
            if self.backlog is not None:
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
            self.sent_at.extend([time.time()] * len(chunk))
            sent += len(chunk)
        self.finished_at = time.time()

    def sent_by_job_id(self) -> dict[str, float]:
        """When each message was sent, by its producer job id."""
        return {producer_job_id(body): at for body, at in zip(self.messages, self.sent_at, strict=False)}


def producer_job_id(body: str) -> str:
    return next(iter(json.loads(body).values()))["id"]


def publish(sns, topic_arn: str, bodies: list[str]) -> None:
    """Publish the bodies as the changelog job does: PublishBatch, 10 a call."""
    for start in range(0, len(bodies), SQS_BATCH.entries):
        chunk = bodies[start : start + SQS_BATCH.entries]
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


@dataclass
class Measured:
    """One run of the messages through the daemon."""

    rate: float
    """Messages per second, first send to the end of the last run."""
    runs: int
    sent: int
    latencies: list[float]
    """Seconds from each changelog message's send to its event's publication on SNS (the job marks
    the row published once SNS accepted it), in the order the messages were sent."""
    published: list[float]
    """When each changelog event was published (epoch seconds)."""

    @property
    def publication_rate(self) -> float:
        """Events published a second, from the first publication to the last: what the intake and the
        runs kept up with, without the first message's own latency."""
        if len(self.published) < 2:
            return 0.0
        return len(self.published) / (max(self.published) - min(self.published))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def through_dagster(
    emulator: Emulator,
    args: argparse.Namespace,
    batch_size: int,
    messages_for: Callable[[Targets], list[str]],
    deletions: int,
    rate: float | None = None,
    backlog: int | None = None,
) -> Measured:
    """The messages through the daemon: offered at `rate` a second (else as fast as the backlog
    allows) with the backlog kept under `backlog` (else unbounded)."""
    aws = emulator.fresh()
    with contextlib.ExitStack() as stack:
        home = stack.enter_context(
            tempfile.TemporaryDirectory(prefix="queue-intake-bench-", ignore_cleanup_errors=True)
        )
        environment = {
            **os.environ,
            **aws.environment(),
            "DAGSTER_HOME": home,
            "PYTHONPATH": str(ROOT),
            settings.JOBS_INTAKE_BATCH_SIZE: str(batch_size),
            settings.JOBS_INTAKE_CHANGELOG_BATCH_SIZE: str(args.changelog_batch_size),
            settings.JOBS_INTAKE_INTERVAL_SECONDS: str(args.interval),
        }
        database_url = None
        if args.jobs == "real":
            database_url = stack.enter_context(temporary_database("intake_bench"))
            with emulator.object_writer(aws) as write_object:
                targets = seed_platform_for(database_url, deletions, write_object)
            environment |= {
                settings.JOBS_DATABASE_URL: database_url,
                settings.SNAPSHOT_STORAGE_URL: Path(home, "snapshots").as_uri(),
            }
        else:
            targets = made_up_targets(100, deletions)
        messages = messages_for(targets)
        config = local_instance_config()
        config["concurrency"]["runs"]["max_concurrent_runs"] = args.parallelism
        Path(home, "dagster.yaml").write_text(yaml.safe_dump(config))
        module = "jobs_orchestration.definitions" if args.jobs == "real" else "benchmarks.queue_intake_defs"
        Path(home, "workspace.yaml").write_text(
            f"load_from:\n  - python_module:\n      module_name: {module}\n      working_directory: {ROOT}\n"
        )
        # Create the instance's storage here, before the daemon and its code server race to do it.
        dg.DagsterInstance.from_config(home).dispose()
        with open(Path(home, "daemon.log"), "w") as log:
            rate_measured, runs, producer = _measure(
                aws, messages, args, batch_size, home, environment, log, rate, backlog, emulator.process_id
            )
        latencies, published = publication_times(database_url, producer) if database_url else ([], [])
        return Measured(rate_measured, runs, len(messages), latencies, published)


def publication_times(database_url: str, producer: PacedProducer) -> tuple[list[float], list[float]]:
    """Seconds from each changelog message's send to its event's publication (in the order sent), and
    the publication times."""
    sent = producer.sent_by_job_id()
    engine = create_db_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.select(DatasetChangelogEvent.job_id, DatasetChangelogEvent.published_at).where(
                    DatasetChangelogEvent.job_id.in_(
                        [key for key in sent if key.startswith("bench-changelog-")]
                    )
                )
            ).all()
    finally:
        engine.dispose()
    published = {job_id: at.timestamp() for job_id, at in rows if at is not None}
    in_order = sorted(published, key=lambda job_id: sent[job_id])
    return [published[job_id] - sent[job_id] for job_id in in_order], list(published.values())


def _measure(
    aws, messages, args, batch_size, home, environment, log, rate, backlog, emulator_process_id
) -> tuple[float, int, PacedProducer]:
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
                raise RuntimeError(
                    f"the sensor never ticked (daemon exit {daemon.poll()}): {_tail(log.name)}"
                )
            time.sleep(0.5)
        # The seeded organizations' first storage refreshes (one each, from organizations_sensor) are
        # setup, not intake: start once they are done.
        while instance.get_run_records(filters=dg.RunsFilter(statuses=NOT_FINISHED_STATUSES), limit=1) or (
            args.jobs == "real"
            and len(instance.get_run_ids(limit=SEEDED_ORGANIZATIONS)) < SEEDED_ORGANIZATIONS
        ):
            if time.time() > deadline or daemon.poll() is not None:
                raise RuntimeError(
                    f"setup runs never finished (daemon exit {daemon.poll()}): {_tail(log.name)}"
                )
            time.sleep(0.5)
        cpu = CpuAccount(daemon.pid, emulator_process_id)
        producer = PacedProducer(aws, messages, backlog, rate)
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
        print(f"  {cpu.summary()}", flush=True)
        assert producer.started_at is not None and producer.finished_at is not None
        durations = [r.end_time - r.start_time for r in message_runs if r.end_time and r.start_time]
        print(
            f"  batch size {batch_size}: {len(message_runs)} runs, {sum(durations) / len(durations):.1f} s "
            f"per run (start to end), {last_end - producer.started_at:.1f} s in all; "
            f"{len(records) - len(message_runs)} other runs; last message sent at "
            f"{producer.finished_at - producer.started_at:.1f} s "
            f"({len(messages) / (producer.finished_at - producer.started_at):.1f} msg/s offered)",
            flush=True,
        )
        print_ticks(instance, producer.started_at, last_end)
        print_where_the_time_goes(message_runs, producer)
        print_runs(records, producer.started_at)
        return finished / (last_end - producer.started_at), len(message_runs), producer
    finally:
        stop_process_group(daemon)


class CpuAccount:
    """CPU seconds spent from now on by Dagster (the daemon, its code server and the run workers they
    started), by the emulator, by this process (the producer, and moto when it runs here), and by the
    whole machine: where a 2-core machine's time went, and what other work took of it."""

    def __init__(self, daemon_pid: int, emulator_pid: int | None) -> None:
        self.daemon_pid, self.emulator_pid = daemon_pid, emulator_pid
        self.started = time.monotonic()
        self.machine = self._machine_busy()
        self.own = self._tree(os.getpid(), recursive=False)
        self.emulator = self._tree(emulator_pid) if emulator_pid else 0.0
        self.dagster = self._tree(daemon_pid)

    @staticmethod
    def _machine_busy() -> float:
        times = psutil.cpu_times()
        return sum(times) - times.idle - getattr(times, "iowait", 0.0)

    @staticmethod
    def _tree(pid: int, recursive: bool = True) -> float:
        """CPU seconds of the process, the children it waited for, and (recursive) its live descendants."""
        try:
            root = psutil.Process(pid)
            processes = [root, *(root.children(recursive=True) if recursive else [])]
        except psutil.NoSuchProcess:
            return 0.0
        total = 0.0
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                times = process.cpu_times()
                total += times.user + times.system + times.children_user + times.children_system
        return total

    def summary(self) -> str:
        wall = time.monotonic() - self.started
        dagster = self._tree(self.daemon_pid) - self.dagster
        emulator = self._tree(self.emulator_pid) - self.emulator if self.emulator_pid else 0.0
        own = self._tree(os.getpid(), recursive=False) - self.own
        machine = self._machine_busy() - self.machine
        others = machine - dagster - emulator - own
        cores = os.cpu_count() or 1
        return (
            f"CPU over {wall:.0f} s ({cores * wall:.0f} core-seconds): Dagster (daemon, code server, runs) "
            f"{dagster:.0f} s, emulator {emulator:.0f} s, benchmark process {own:.0f} s, other "
            f"processes (PostgreSQL, other work on the machine) {max(others, 0):.0f} s; busy {machine / (cores * wall):.0%}"
        )


def print_where_the_time_goes(records: list, producer: PacedProducer) -> None:
    """Per run that messages started: from its first message's send to the run's creation (the wait
    for a tick and the tick itself), to its start (queue and launch), to its end (the job)."""
    sent = producer.sent_by_job_id()
    phases = []
    for record in records:
        first_sent = min(
            sent[producer_job_id(source.body)] for source in sources_in(record.dagster_run.run_config)
        )
        created = record.create_timestamp.timestamp()
        if record.start_time and record.end_time:
            phases.append(
                (created - first_sent, record.start_time - created, record.end_time - record.start_time)
            )
    if not phases:
        return
    names = (
        "first send to run created (tick)",
        "created to started (queue, launch)",
        "started to ended (job)",
    )
    print(
        "  where the time goes, per run (mean / p95 / max s): "
        + "; ".join(
            f"{name} {sum(p[i] for p in phases) / len(phases):.1f} / "
            f"{percentile([p[i] for p in phases], 0.95):.1f} / {max(p[i] for p in phases):.1f}"
            for i, name in enumerate(names)
        ),
        flush=True,
    )


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
    gaps = [b.timestamp - a.end_timestamp for a, b in zip(ticks, ticks[1:], strict=False)]
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
            for (count, seconds), tick in zip(per_tick, ticks, strict=False)
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


@dataclass
class Emulator:
    """A local AWS the benchmark measures against, reset to fresh queues, topics and buckets per part."""

    name: str
    endpoint_url: str
    reset: Callable[[], None]
    object_writer: Callable[[LocalAws], contextlib.AbstractContextManager[ObjectWriter]]
    process_id: int | None = None
    """The emulator's own process; None when it runs in this one (moto)."""

    def fresh(self) -> LocalAws:
        self.reset()
        return provision(self.endpoint_url)


@contextlib.contextmanager
def emulator(name: str) -> Iterator[Emulator]:
    if name == "moto":
        server, endpoint = start_moto_server()
        try:
            yield Emulator(
                name,
                endpoint,
                lambda: reset_moto(endpoint),
                lambda aws: contextlib.nullcontext(moto_backend_object_writer()),
            )
        finally:
            server.stop()
    else:
        with running_localstack() as server:
            yield Emulator(
                name,
                server.endpoint_url,
                lambda: reset_localstack(server.endpoint_url),
                lambda aws: http_object_writer(aws.client("s3")),
                server.process.pid if server.process else None,
            )


def load_average() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def measure_on(emulator_name: str, args: argparse.Namespace) -> dict[str, float]:
    """Every intake figure against one emulator, printed as it comes."""
    changelog, deletions = round(2000 * args.scale), round(500 * args.scale)
    figures: dict[str, float] = {}
    print(f"== {emulator_name} (load average {load_average()})", flush=True)
    with emulator(emulator_name) as aws_emulator:
        messages = bodies(made_up_targets(changelog, deletions), changelog, deletions)
        figures["ceiling"] = ceiling(aws_emulator.fresh(), messages, args.backlog)
        print(f"{len(messages)} messages; ceiling (bare loop): {figures['ceiling']:.1f} msg/s", flush=True)
        figures["without Dagster"] = without_dagster(aws_emulator.fresh(), messages, args.backlog)
        print(
            f"intake's tick on the daemon's {MIN_INTERVAL_LOOP_TIME} s loop, without Dagster: "
            f"{figures['without Dagster']:.1f} msg/s ({figures['without Dagster'] / figures['ceiling']:.0%} "
            "of the ceiling)",
            flush=True,
        )
        for size in args.batch_sizes:
            mixed_run = through_dagster(
                aws_emulator,
                args,
                size,
                lambda targets: bodies(targets, changelog, deletions),
                deletions,
                backlog=args.backlog,
            )
            figures[f"mixed, batch {size}"] = mixed_run.rate
            print(
                f"mixed {changelog:,} changelog + {deletions:,} deletions, batch size {size} (changelog {args.changelog_batch_size}): "
                f"{mixed_run.rate:.1f} msg/s in {mixed_run.runs} runs, {mixed_run.rate / figures['ceiling']:.0%} "
                f"of the ceiling, {mixed_run.rate / figures['without Dagster']:.0%} of the intake without "
                f"Dagster; {latency_summary(mixed_run.latencies)}",
                flush=True,
            )
        if args.rate_messages:
            if figures["ceiling"] < args.rate:
                print(
                    f"production rate ({args.rate:.0f} msg/s): not run, the {emulator_name} ceiling "
                    f"({figures['ceiling']:.1f} msg/s) is below it",
                    flush=True,
                )
            else:
                rate_run = through_dagster(
                    aws_emulator,
                    args,
                    args.batch_sizes[-1],
                    lambda targets: bodies(targets, args.rate_messages, 0),
                    0,
                    rate=args.rate,
                )
                figures["production rate"] = rate_run.publication_rate
                figures["production, first send to last run end"] = rate_run.rate
                figures["production p95"] = percentile(rate_run.latencies, 0.95)
                tenth = max(1, len(rate_run.latencies) // 10)
                met = rate_run.publication_rate >= args.rate and figures["production p95"] <= args.target_p95
                print(
                    f"production rate: {rate_run.sent:,} changelog messages offered at {args.rate:.0f} msg/s, "
                    f"changelog batch size {args.changelog_batch_size}, {rate_run.runs} runs: "
                    f"{rate_run.publication_rate:.1f} msg/s published (first to last publication), "
                    f"{rate_run.rate:.1f} msg/s from the first send to the last run's end "
                    f"({rate_run.publication_rate / figures['ceiling']:.0%} of the ceiling); "
                    f"{latency_summary(rate_run.latencies)}; p95 of the first tenth sent "
                    f"{percentile(rate_run.latencies[:tenth], 0.95):.1f} s, of the last tenth "
                    f"{percentile(rate_run.latencies[-tenth:], 0.95):.1f} s; target >= {args.rate:.0f} msg/s "
                    f"and p95 <= {args.target_p95:.0f} s: " + ("met" if met else "NOT met"),
                    flush=True,
                )
    print(f"== {emulator_name} done (load average {load_average()})", flush=True)
    return figures


def latency_summary(latencies: list[float]) -> str:
    if not latencies:
        return "no changelog latencies"
    return (
        f"send to published on SNS p50 {percentile(latencies, 0.5):.1f} s, p95 {percentile(latencies, 0.95):.1f} s, "
        f"max {max(latencies):.1f} s ({len(latencies):,} events)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--aws", choices=["moto", "localstack", "both"], default="both")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="Fraction of 2,000 changelog + 500 deletions (the mixed run)"
    )
    parser.add_argument(
        "--batch-sizes",
        default=str(DEFAULT_BATCH_SIZE),
        help=f"Comma-separated batch sizes of the mixed run (default {DEFAULT_BATCH_SIZE}); the production "
        "rate run takes the last",
    )
    parser.add_argument(
        "--changelog-batch-size",
        type=int,
        default=DEFAULT_CHANGELOG_BATCH_SIZE,
        help=f"Changelog messages per run (default {DEFAULT_CHANGELOG_BATCH_SIZE})",
    )
    parser.add_argument(
        "--rate-messages",
        type=int,
        default=10_000,
        help="Changelog messages of the production rate run (0: none)",
    )
    parser.add_argument(
        "--rate", type=float, default=100.0, help="Production rate offered, messages a second"
    )
    parser.add_argument(
        "--target-p95", type=float, default=20.0, help="Target p95 send to published, seconds"
    )
    parser.add_argument("--backlog", type=int, default=100, help="The mixed run keeps the queue under this")
    parser.add_argument("--parallelism", type=int, default=10, help="Runs at once (the old PARALLELISM)")
    parser.add_argument(
        "--interval",
        type=int,
        default=settings.DEFAULTS.jobs_intake_interval_seconds,
        help="Sensor minimum interval, seconds",
    )
    parser.add_argument(
        "--jobs",
        choices=["real", "stand-in"],
        default="real",
        help="real: the project's code location on a seeded PostgreSQL database; stand-in: "
        "benchmarks/queue_intake_defs.py (the same AWS calls, no database)",
    )
    parser.add_argument("--timeout", type=float, default=3600, help="Give up on one part after this")
    args = parser.parse_args()
    args.batch_sizes = [int(size) for size in args.batch_sizes.split(",")]
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log

    print(f"load average before: {load_average()} ({os.cpu_count()} cores)", flush=True)
    results = {
        name: measure_on(name, args)
        for name in (["moto", "localstack"] if args.aws == "both" else [args.aws])
    }
    print(f"load average after: {load_average()}")
    print("figure | " + " | ".join(results))
    for figure in dict.fromkeys(f for figures in results.values() for f in figures):
        print(
            f"{figure} | "
            + " | ".join(
                f"{figures[figure]:.1f}" if figure in figures else "-" for figures in results.values()
            )
        )


if __name__ == "__main__":
    main()
