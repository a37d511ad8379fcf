"""The whole system running as in a deployment, for end-to-end and crash tests: a moto server, the
platform database and the Dagster instance on PostgreSQL (throw-away databases), the code server, the
webserver and the daemon as process groups (the dev stack's supervisor), and what an operator uses to
watch it: the command line, the queue's counts and the webserver's GraphQL API."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg
import psutil
import yaml
from moto.moto_api._internal.models import moto_api_backend

from jobs_orchestration.db.engine import create_db_engine
from jobs_orchestration.devstack.aws import LocalAws
from jobs_orchestration.devstack.stack import REPOSITORY_ROOT, LocalStack, free_port
from jobs_orchestration_tests.support.postgres import temporary_database

T = TypeVar("T")

LOCATION_NAME = "jobs_orchestration"
REPOSITORY_NAME = "__repository__"
TEST_VISIBILITY_TIMEOUT_SECONDS = 20
"""The test queue hides a received message this long (120 s in a deployment), so a message received by
a tick that died comes back within a test's patience."""

RUNS_QUERY = """
query Runs($filter: RunsFilter, $limit: Int) {
  runsOrError(filter: $filter, limit: $limit) {
    __typename
    ... on Runs { results { runId jobName status tags { key value } } }
    ... on PythonError { message }
  }
}
"""

LAUNCH_RUN_MUTATION = """
mutation Launch($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""

IN_PROGRESS = {"QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"}


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    job_name: str
    status: str
    tags: dict[str, str]

    @property
    def producer_job_ids(self) -> set[str]:
        return set(filter(None, self.tags.get("producer_job_ids", "").split(",")))


class CrashableStack(LocalStack):
    """The dev stack, remembering how it started each process so one can be killed and started again."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._commands: dict[str, tuple[list[str], dict[str, str]]] = {}

    def _start_dagster(self) -> None:
        # Launch queued runs on threads: a run worker takes seconds to start on a small machine, and a
        # serial dequeue would start the runs of one sensor tick one after the other.
        config_path = self.dagster_home / "dagster.yaml"
        config = yaml.safe_load(config_path.read_text())
        config["run_coordinator"] = {
            "module": "dagster._core.run_coordinator",
            "class": "QueuedRunCoordinator",
            "config": {"dequeue_use_threads": True, "dequeue_num_workers": 4},
        }
        config_path.write_text(yaml.safe_dump(config))
        super()._start_dagster()

    def _spawn(self, name: str, command: list[str], environment: dict[str, str]) -> None:
        self._commands[name] = (command, environment)
        super()._spawn(name, command, environment)

    def process(self, name: str) -> subprocess.Popen:
        return next(process for process_name, process in self._processes if process_name == name)

    def kill(self, name: str) -> None:
        """SIGKILL the whole process group, as the kernel's OOM killer or a lost machine would."""
        process = self.process(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        self._processes.remove((name, process))

    def start_again(self, name: str) -> None:
        command, environment = self._commands[name]
        super()._spawn(name, command, environment)


@dataclass
class RunningSystem:
    """Start with `with RunningSystem(tmp_path) as system:`; everything started is stopped on exit,
    whatever happened in between."""

    root: Path
    extra_environment: dict[str, str] = field(default_factory=dict)
    log: Callable[[str], None] = lambda line: None
    expected_failures: set[str] = field(default_factory=set)
    """Ids of runs a test crashed on purpose: their failure fails no wait."""

    stack: CrashableStack = field(init=False)
    database_url: str = field(init=False)
    instance_database_url: str = field(init=False)
    _resources: ExitStack = field(init=False, default_factory=ExitStack)

    def __enter__(self) -> RunningSystem:
        # moto keeps its state per process, not per server: queues another moto server of this
        # process created (the test session's) would clash with the ones the stack creates.
        moto_api_backend.reset()
        try:
            self.database_url = self._resources.enter_context(temporary_database("jobs_e2e"))
            self.instance_database_url = self._resources.enter_context(temporary_database("dagster_e2e"))
            self.stack = CrashableStack(
                workdir=self.root / "local",
                dagster_home=self.root / "dagster_home",
                database_url=self.database_url,
                ui_port=free_port(),
                seed=None,
                instance_storage={"postgres": {"postgres_url": self.instance_database_url}},
                extra_environment=self.extra_environment,
            )
            self.stack.log = self.log
            self._resources.enter_context(self.stack)
            self.aws.client("sqs").set_queue_attributes(
                QueueUrl=self.aws.queue_url,
                Attributes={"VisibilityTimeout": str(TEST_VISIBILITY_TIMEOUT_SECONDS)},
            )
            self.engine = create_db_engine(self.database_url)
            self._resources.callback(self.engine.dispose)
        except BaseException:
            self._resources.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._resources.close()

    @property
    def aws(self) -> LocalAws:
        assert self.stack.aws is not None
        return self.stack.aws

    @property
    def environment(self) -> dict[str, str]:
        return {**os.environ, **self.stack.environment, "PYTHONPATH": str(REPOSITORY_ROOT)}

    def log_file(self, name: str) -> Path:
        return self.stack.workdir / f"{name}.log"

    # -- the operator's tools ----------------------------------------------------------------------

    def command(self, *arguments: str) -> str:
        """Run `jobs-orchestration ...` with the system's environment; returns its output."""
        completed = subprocess.run(
            [sys.executable, "-m", "jobs_orchestration.cli", *arguments],
            env=self.environment,
            cwd=REPOSITORY_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if completed.returncode != 0:
            raise AssertionError(f"jobs-orchestration {' '.join(arguments)} failed: {completed.stderr}")
        return completed.stdout

    def enqueue(self, *arguments: str) -> str:
        """`jobs-orchestration enqueue ...`; returns the SQS message id."""
        return self.command("enqueue", *arguments).strip()

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.stack.ui_url}/graphql",
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())
        if answer.get("errors"):
            raise AssertionError(f"GraphQL errors: {answer['errors']}")
        return answer["data"]

    def runs(self, job_name: str | None = None) -> list[RunSummary]:
        run_filter = {"pipelineName": job_name} if job_name else {}
        data = self.graphql(RUNS_QUERY, {"filter": run_filter, "limit": 1000})["runsOrError"]
        if data["__typename"] != "Runs":
            raise AssertionError(f"runsOrError answered {data}")
        return [
            RunSummary(
                run["runId"], run["jobName"], run["status"], {t["key"]: t["value"] for t in run["tags"]}
            )
            for run in data["results"]
        ]

    def launch(self, job_name: str, run_config: dict[str, Any], tags: dict[str, str] | None = None) -> str:
        """Launch a run through the webserver, as the launchpad does; returns its run id."""
        params = {
            "selector": {
                "repositoryLocationName": LOCATION_NAME,
                "repositoryName": REPOSITORY_NAME,
                "jobName": job_name,
            },
            "runConfigData": run_config,
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]},
        }
        answer = self.graphql(LAUNCH_RUN_MUTATION, {"executionParams": params})["launchRun"]
        if answer["__typename"] != "LaunchRunSuccess":
            raise AssertionError(f"launchRun answered {answer}")
        return answer["run"]["runId"]

    def queue_counts(self) -> tuple[int, int]:
        """(visible, in flight) of the job queue."""
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attributes = self.aws.client("sqs").get_queue_attributes(
            QueueUrl=self.aws.queue_url, AttributeNames=names
        )["Attributes"]
        return int(attributes[names[0]]), int(attributes[names[1]])

    def dead_letter_count(self) -> int:
        attributes = self.aws.client("sqs").get_queue_attributes(
            QueueUrl=self.aws.dead_letter_queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    # -- waiting -----------------------------------------------------------------------------------

    def wait_for(self, what: str, check: Callable[[], T], timeout: float, interval: float = 1.0) -> T:
        """Poll `check` until it returns something true; fail naming `what`, with the daemon's last
        lines, after `timeout` seconds. Also fails at once when a process of the stack died."""
        deadline = time.monotonic() + timeout
        while True:
            self.stack.check_processes()
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout:.0f} s\n{self.tail('daemon')}")
            time.sleep(interval)

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.log_file(name)
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def wait_until_done(
        self, producer_job_ids: set[str], timeout: float, *, failures_expected: bool = False
    ) -> None:
        """Wait until every message's work is done (see every_message_done); on timeout, the failure
        says which messages have no successful run and what the runs and the queue are doing."""
        try:
            self.wait_for(
                "every message has a successful run and the queue is empty",
                lambda: self.every_message_done(producer_job_ids, failures_expected=failures_expected),
                timeout,
                interval=2,
            )
        except AssertionError as error:
            runs = self.runs()
            succeeded = {job_id for run in runs if run.status == "SUCCESS" for job_id in run.producer_job_ids}
            states = Counter(f"{run.job_name} {run.status}" for run in runs)
            raise AssertionError(
                f"{error}\nwithout a successful run: {sorted(producer_job_ids - succeeded)}\n"
                f"runs: {dict(states)}\nqueue (visible, in flight): {self.queue_counts()}"
            ) from None

    def every_message_done(self, producer_job_ids: set[str], *, failures_expected: bool = False) -> bool:
        """Each producer job id has a successful run, no run carrying one is still going, the queue is
        empty. A failed run fails the wait at once unless failures are expected (crashed runs are
        retried). Runs started by other sensors (storage refreshes after deletions) may still go on."""
        runs = self.runs()
        failed = [run for run in runs if run.status == "FAILURE" and run.run_id not in self.expected_failures]
        if failed and not failures_expected:
            raise AssertionError(f"failed runs: {failed}\n{self.run_failure(failed[0].run_id)}")
        if any(run.status in IN_PROGRESS and run.producer_job_ids & producer_job_ids for run in runs):
            return False
        succeeded = {job_id for run in runs if run.status == "SUCCESS" for job_id in run.producer_job_ids}
        return producer_job_ids <= succeeded and self.queue_counts() == (0, 0)

    def run_failure(self, run_id: str) -> str:
        """The error messages a run's events carry, for a failing test's report."""
        with self.instance() as instance:
            records = instance.all_logs(run_id)
        return "\n".join(
            record.dagster_event.message or ""
            for record in records
            if record.dagster_event and record.dagster_event.is_failure
        ) or "\n".join(str(record.user_message) for record in records[-5:])

    # -- crashes -----------------------------------------------------------------------------------

    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.from_config(str(self.stack.dagster_home))

    def worker_processes(self, instance: dg.DagsterInstance, run_id: str) -> list[psutil.Process]:
        """The run worker and its step processes, found by the pids their RUN_START and STEP_START
        events carry (the code server and the daemon emit other events of the run: never those)."""
        pids = set()
        for event_type in (dg.DagsterEventType.RUN_START, dg.DagsterEventType.STEP_START):
            for record in instance.get_records_for_run(run_id, of_type=event_type).records:
                pid = record.event_log_entry.dagster_event.pid
                if pid:
                    pids.add(pid)
        processes = []
        for pid in pids:
            with contextlib.suppress(psutil.NoSuchProcess):
                process = psutil.Process(pid)
                processes.append(process)
                processes.extend(process.children(recursive=True))
        return processes

    def run_with_step_started(
        self, instance: dg.DagsterInstance, job_name: str, producer_job_id: str
    ) -> str | None:
        """The id of the `job_name` run carrying the message whose step has started, if there is one."""
        for run in self.runs(job_name):
            if (
                producer_job_id in run.producer_job_ids
                and instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.STEP_START).records
            ):
                return run.run_id
        return None

    def kill_run_worker(self, instance: dg.DagsterInstance, run_id: str) -> bool:
        """Freeze the run's worker tree, then SIGKILL all of it; False when nothing was left to kill."""
        processes = self.worker_processes(instance, run_id)
        alive = []
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.suspend()
                alive.append(process)
        for process in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        psutil.wait_procs(alive, timeout=10)
        return bool(alive)
