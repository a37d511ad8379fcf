"""Throughput of the SQS intake through the real Dagster daemon and run launcher, against a bare loop.

Puts changelog messages, then small package deletions, on a moto server through a producer paced to
keep the backlog under `--backlog` messages (moto's SQS scans the whole queue on every call, so a deep
backlog would measure moto). A `dagster-daemon` with a temporary DAGSTER_HOME runs `sqs_jobs_sensor`
from `--module` (default: `benchmarks.queue_intake_defs`, jobs with the contract names that make the
per-message AWS calls and no database work), once per batch size. Time runs from the first enqueue to
the end of the last successful run.

The ceiling is a loop making the same AWS calls per message (receive, delete, publish) against the same
emulator and backlog, with no Dagster and no database.

    /work/main/.venv/bin/python benchmarks/queue_intake.py --scale 0.05     # quick
    /work/main/.venv/bin/python benchmarks/queue_intake.py                  # 2,000 + 500 messages
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dagster as dg  # noqa: E402

from jobs_orchestration.devstack.aws import LocalAws, provision, reset_moto, start_moto_server  # noqa: E402

DAGSTER_YAML = """
run_queue:
  max_concurrent_runs: {parallelism}
sensors:
  use_threads: true
  num_workers: 2
  num_submit_workers: 4
telemetry:
  enabled: false
"""


def bodies(changelog: int, deletions: int) -> list[str]:
    messages = [
        json.dumps(
            {
                "DatasetChangelogEventJob": {
                    "organizationId": 1 + i % 5,
                    "datasetId": 1000 + i,
                    "userId": "N:user:bench",
                    "traceId": f"bench-c{i}",
                    "events": [
                        {"eventType": "UPDATE_NAME", "eventDetail": {"oldName": "a", "newName": f"b{i}"}}
                    ],
                    "id": f"bench-changelog-{i}",
                }
            }
        )
        for i in range(changelog)
    ]
    messages += [
        json.dumps(
            {
                "DeletePackageJob": {
                    "packageId": 50_000 + i,
                    "organizationId": 1 + i % 5,
                    "userId": "N:user:bench",
                    "traceId": f"bench-p{i}",
                    "id": f"bench-delete-{i}",
                }
            }
        )
        for i in range(deletions)
    ]
    return messages


class PacedProducer(threading.Thread):
    """Sends in batches of 10 whenever the visible backlog is under the limit."""

    def __init__(self, aws: LocalAws, messages: list[str], backlog: int) -> None:
        super().__init__(daemon=True)
        self.aws, self.messages, self.backlog = aws, messages, backlog
        self.started_at: float | None = None

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
        events = [m for m in received if "DatasetChangelogEventJob" in m["Body"]]
        if events:
            sns.publish_batch(
                TopicArn=aws.topic_arn,
                PublishBatchRequestEntries=[
                    {"Id": str(i), "Message": m["Body"]} for i, m in enumerate(events)
                ],
            )
        sqs.delete_message_batch(
            QueueUrl=aws.queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(received)],
        )
        done += len(received)
    assert producer.started_at is not None
    return done / (time.time() - producer.started_at)


def through_dagster(
    aws: LocalAws, messages: list[str], args: argparse.Namespace, batch_size: int
) -> tuple[float, int]:
    """Messages per second through the daemon, and the number of runs it took."""
    with tempfile.TemporaryDirectory(prefix="queue-intake-bench-") as home:
        Path(home, "dagster.yaml").write_text(DAGSTER_YAML.format(parallelism=args.parallelism))
        Path(home, "workspace.yaml").write_text(
            f"load_from:\n  - python_module:\n      module_name: {args.module}\n"
            f"      working_directory: {ROOT}\n"
        )
        environment = {
            **os.environ,
            **aws.environment(),
            "DAGSTER_HOME": home,
            "PYTHONPATH": str(ROOT),
            "JOBS_INTAKE_BATCH_SIZE": str(batch_size),
            "JOBS_INTAKE_INTERVAL_SECONDS": str(args.interval),
        }
        # Create the instance's storage here, before the daemon and its code server race to do it.
        dg.DagsterInstance.from_config(home).dispose()
        with open(Path(home, "daemon.log"), "w") as log:
            return _measure(aws, messages, args, batch_size, home, environment, log)


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
        producer = PacedProducer(aws, messages, args.backlog)
        producer.start()
        instance = dg.DagsterInstance.from_config(home)
        deadline = time.time() + args.timeout
        while True:
            records = instance.get_run_records(
                filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE])
            )
            failed = [r for r in records if r.dagster_run.status == dg.DagsterRunStatus.FAILURE]
            if failed:
                raise RuntimeError(f"{len(failed)} run(s) failed: {_tail(log.name)}")
            finished = sum(int(r.dagster_run.tags.get("message_count", "0")) for r in records)
            if finished >= len(messages):
                break
            if time.time() > deadline or daemon.poll() is not None:
                raise RuntimeError(
                    f"batch size {batch_size}: {finished}/{len(messages)} messages done when stopped "
                    f"(daemon exit {daemon.poll()}): {_tail(log.name)}"
                )
            time.sleep(1)
        last_end = max(r.end_time for r in records if r.end_time)
        assert producer.started_at is not None
        return finished / (last_end - producer.started_at), len(records)
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(timeout=60)


def _tail(path: str, lines: int = 30) -> str:
    return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="Fraction of 2,000 changelog + 500 deletions"
    )
    parser.add_argument("--batch-sizes", default="1,10", help="Comma-separated batch sizes to run")
    parser.add_argument("--backlog", type=int, default=100, help="Producer keeps the queue under this")
    parser.add_argument("--parallelism", type=int, default=10, help="Runs at once (the old PARALLELISM)")
    parser.add_argument("--interval", type=int, default=5, help="Sensor minimum interval, seconds")
    parser.add_argument("--module", default="benchmarks.queue_intake_defs", help="Code location module")
    parser.add_argument("--timeout", type=float, default=3600, help="Give up on one batch size after this")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log

    messages = bodies(round(2000 * args.scale), round(500 * args.scale))
    server, endpoint = start_moto_server()
    try:
        figures: dict[str, float] = {}
        reset_moto(endpoint)
        figures["ceiling"] = ceiling(provision(endpoint), messages, args.backlog)
        print(f"{len(messages)} messages; ceiling (bare loop): {figures['ceiling']:.1f} msg/s", flush=True)
        for size in (int(s) for s in args.batch_sizes.split(",")):
            reset_moto(endpoint)
            rate, runs = through_dagster(provision(endpoint), messages, args, size)
            figures[f"batch {size}"] = rate
            print(f"batch size {size}: {rate:.2f} msg/s in {runs} runs", flush=True)
    finally:
        server.stop()
    for name, rate in figures.items():
        if name != "ceiling":
            print(f"{name}: {rate / figures['ceiling']:.1%} of the ceiling")
    sizes = [name for name in figures if name.startswith("batch ")]
    if "batch 1" in figures:
        for name in sizes:
            if name != "batch 1":
                print(f"{name} / batch 1: {figures[name] / figures['batch 1']:.1f}x")


if __name__ == "__main__":
    main()
