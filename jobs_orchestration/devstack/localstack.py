"""LocalStack (SQS, SNS and S3 as one plain process, no Docker) as a local AWS beside moto.

moto's SQS scans the whole queue on every receive, so a deep backlog measures moto; LocalStack's own
SQS does not slow with the queue's length, so the benchmarks measure the intake against it too. It runs
from its own virtual environment (`make localstack` creates `.tools/localstack-venv`: its pins
conflict with the project's), as a child process in a session of its own, on a free port.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from jobs_orchestration.aws import s3
from jobs_orchestration.devstack.aws import LocalAws, provision

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
LOCALSTACK_VENV = REPOSITORY_ROOT / ".tools" / "localstack-venv"
SERVICES = ("sqs", "sns", "s3")
START_TIMEOUT_SECONDS = 180.0
"""LocalStack says "Ready." in about 25 s on a loaded 2-core machine; a start slower than this failed."""
STOP_TIMEOUT_SECONDS = 20.0


class LocalStackMissing(RuntimeError):
    """The virtual environment LocalStack runs from is not there."""


class LocalStackFailed(RuntimeError):
    """LocalStack exited, or did not answer healthy in time."""


def localstack_python(venv: Path = LOCALSTACK_VENV) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        raise LocalStackMissing(
            f"LocalStack is not installed ({python} is missing): run `make localstack` in "
            f"{REPOSITORY_ROOT} to create {venv}"
        )
    return python


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@dataclass
class LocalStackServer:
    """A LocalStack process on `host:port`; `start` waits until its services answer, `stop` leaves no
    process behind."""

    host: str = "127.0.0.1"
    port: int = 0
    venv: Path = LOCALSTACK_VENV
    start_timeout: float = START_TIMEOUT_SECONDS
    process: subprocess.Popen | None = None
    _workdir: Path | None = None
    _log: Path | None = field(default=None, repr=False)

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> LocalStackServer:
        python = localstack_python(self.venv)
        self.port = self.port or free_port(self.host)
        self._workdir = Path(tempfile.mkdtemp(prefix="localstack-"))
        self._log = self._workdir / "localstack.log"
        address = f"{self.host}:{self.port}"
        environment = {
            # Its own environment only: none of the project's AWS variables, nothing of this process.
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self._workdir),
            "GATEWAY_LISTEN": address,
            # Queue URLs name this address (not localhost.localstack.cloud, which needs DNS).
            "LOCALSTACK_HOST": address,
            "SQS_ENDPOINT_STRATEGY": "path",
            "SERVICES": ",".join(SERVICES),
            "EAGER_SERVICE_LOADING": "1",
            "LOCALSTACK_VOLUME_DIR": str(self._workdir / "volume"),
            "TMPDIR": str(self._workdir),
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "DISABLE_EVENTS": "1",
            "DNS_ADDRESS": "0",
        }
        with open(self._log, "wb") as log:
            self.process = subprocess.Popen(
                [str(python), "-m", "localstack.runtime.main"],
                cwd=self._workdir,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_healthy(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LocalStackFailed(f"LocalStack exited with {self.process.returncode}: {self.log_tail()}")
            if self.healthy():
                return
            time.sleep(0.5)
        raise LocalStackFailed(
            f"LocalStack did not answer healthy within {self.start_timeout:.0f} s: {self.log_tail()}"
        )

    def healthy(self) -> bool:
        """Every service of `SERVICES` reports available or running."""
        try:
            with urllib.request.urlopen(f"{self.endpoint_url}/_localstack/health", timeout=2) as response:
                states = json.load(response).get("services", {})
        except (OSError, ValueError):
            return False
        return all(states.get(service) in ("available", "running") for service in SERVICES)

    def log_tail(self, lines: int = 20) -> str:
        if self._log is None or not self._log.exists():
            return "(no log)"
        return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """Stop LocalStack and everything it started (they share its session), then remove its files."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)  # what outlived a polite stop
            self.process.wait()
            self.process = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None


@contextlib.contextmanager
def running_localstack(**options) -> Iterator[LocalStackServer]:
    server = LocalStackServer(**options).start()
    try:
        yield server
    finally:
        server.stop()


def reset_localstack(endpoint_url: str) -> None:
    """Forget every queue, topic, bucket and object LocalStack holds (its community edition has no
    reset endpoint: through the APIs, as a clean start would leave it)."""
    probe = LocalAws(endpoint_url, "", "", "")
    sqs, sns, s3_client = probe.client("sqs"), probe.client("sns"), probe.client("s3")
    for queue_url in sqs.list_queues().get("QueueUrls", []):
        sqs.delete_queue(QueueUrl=queue_url)
    for page in sns.get_paginator("list_topics").paginate():
        for topic in page.get("Topics", []):
            sns.delete_topic(TopicArn=topic["TopicArn"])
    for bucket in s3_client.list_buckets().get("Buckets", []):
        keys = [key for key, _size in s3.iter_keys_under(s3_client, bucket["Name"], "")]
        s3.delete_keys(s3_client, bucket["Name"], keys)
        s3_client.delete_bucket(Bucket=bucket["Name"])


@contextlib.contextmanager
def localstack_aws(**options) -> Iterator[tuple[LocalStackServer, LocalAws]]:
    """A running LocalStack with the queues, topics and buckets the moto stack gets."""
    with running_localstack(**options) as server:
        yield server, provision(server.endpoint_url)
