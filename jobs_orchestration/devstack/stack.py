"""The whole system on one machine: a local AWS, the database, demo data and the Dagster processes
(code server, webserver, daemon), supervised together so that stopping one stops all of them."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from dagster._core.errors import DagsterUserCodeUnreachableError
from dagster._grpc.client import DagsterGrpcClient

from jobs_orchestration import settings
from jobs_orchestration.db.engine import create_db_engine
from jobs_orchestration.db.migrate import upgrade
from jobs_orchestration.devstack.aws import LocalAws, provision, start_moto_server
from jobs_orchestration.devstack.demo import (
    DEMO_SCRIPT_NAME,
    demo_messages,
    mark_demo_deletions,
    write_demo_script,
)
from jobs_orchestration.devstack.localstack import LocalStackServer
from jobs_orchestration.devstack.seed import SeedSizes, http_object_writer, seed_email_parser, seed_platform
from jobs_orchestration.snapshots.store import LocalFolderStore

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
STOP_GRACE_SECONDS = 15
CODE_SERVER = "code-server"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_environment_file(path: Path, environment: dict[str, str]) -> None:
    """Write `export NAME=value` lines that a POSIX shell sources back to exactly these values. The file
    replaces any earlier one and is created readable by its owner only (it may hold a database URL with
    its password), never readable by others even for a moment."""
    for name in environment:
        if not _SHELL_NAME.fullmatch(name):
            raise ValueError(f"environment variable name {name!r} is not one a shell can export")
    text = "".join(f"export {name}={shlex.quote(value)}\n" for name, value in environment.items())
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)


def local_instance_config(storage: dict[str, Any] | None = None) -> dict[str, Any]:
    """The local instance (the top-level dagster.yaml), with `storage` if given: SQLite under
    DAGSTER_HOME otherwise."""
    config = yaml.safe_load((REPOSITORY_ROOT / "dagster.yaml").read_text())
    if storage:
        config["storage"] = storage
    return config


@dataclass
class LocalStack:
    workdir: Path = REPOSITORY_ROOT / ".local"
    dagster_home: Path = REPOSITORY_ROOT / ".dagster_home"
    database_url: str | None = None
    ui_port: int = 3000
    seed: SeedSizes | None = field(default_factory=SeedSizes)
    instance_storage: dict[str, Any] | None = None
    extra_environment: dict[str, str] = field(default_factory=dict)
    aws_emulator: str = "moto"
    """`moto` (in this process) or `localstack` (a child process, `make localstack` installs it)."""
    log = print

    aws: LocalAws | None = None
    environment: dict[str, str] = field(default_factory=dict)
    _moto: Any = None
    """The local AWS's server, moto's or LocalStack's: both stop with `stop()`."""
    _environment_file: Path | None = None
    _processes: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    _code_server_port: int | None = None

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"

    def __enter__(self) -> LocalStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.dagster_home.mkdir(parents=True, exist_ok=True)
        database_url = self.database_url or f"sqlite:///{self.workdir / 'jobs.db'}"
        snapshot_root = self.workdir / "snapshots"

        if self.aws_emulator == "localstack":
            self._moto = LocalStackServer().start()
            endpoint = self._moto.endpoint_url
        else:
            self._moto, endpoint = start_moto_server()
        self.aws = provision(endpoint)
        self.log(f"local AWS ({self.aws_emulator}) at {endpoint}")
        upgrade(database_url)
        # A script left by an earlier start names targets this database may not hold.
        (self.workdir / DEMO_SCRIPT_NAME).unlink(missing_ok=True)
        if self.seed:
            self._seed(self.aws, self.seed, database_url, snapshot_root)

        self.environment = {
            **self.aws.environment(),
            settings.JOBS_DATABASE_URL: database_url,
            settings.SNAPSHOT_STORAGE_URL: snapshot_root.resolve().as_uri(),
            "DAGSTER_HOME": str(self.dagster_home.resolve()),
            settings.DAGSTER_WEBSERVER_URL: self.ui_url,
            **self.extra_environment,
        }
        self._environment_file = self.workdir / "env"
        write_environment_file(self._environment_file, self.environment)
        (self.dagster_home / "dagster.yaml").write_text(
            yaml.safe_dump(local_instance_config(self.instance_storage))
        )
        self._start_dagster()

    def _seed(self, aws: LocalAws, sizes: SeedSizes, database_url: str, snapshot_root: Path) -> None:
        engine = create_db_engine(database_url)
        try:
            with http_object_writer(aws.client("s3")) as write, engine.begin() as connection:
                platform = seed_platform(connection, sizes, write)
                parser = seed_email_parser(connection, LocalFolderStore(snapshot_root), sizes)
                targets = mark_demo_deletions(
                    connection, platform.organization_ids[0], platform.user_node_ids[0]
                )
        finally:
            engine.dispose()
        self.log(f"seeded {platform.rows} with {platform.objects} objects; snapshots: {parser.rows}")
        script = self.workdir / DEMO_SCRIPT_NAME
        write_demo_script(script, targets, Path(sys.executable).parent / "jobs-orchestration")
        self.log(f"demo job messages, ready to send with {script} [NAME...]:")
        for message in demo_messages(targets):
            self.log(f"  {message.name}: {message.description}")

    def _start_dagster(self) -> None:
        code_port = self._code_server_port = free_port()
        workspace = self.dagster_home / "workspace.yaml"
        workspace.write_text(
            yaml.safe_dump(
                {
                    "load_from": [
                        {
                            "grpc_server": {
                                "host": "127.0.0.1",
                                "port": code_port,
                                "location_name": "jobs_orchestration",
                            }
                        }
                    ]
                }
            )
        )
        environment = {**os.environ, **self.environment, "PYTHONPATH": str(REPOSITORY_ROOT)}
        bin_dir = Path(sys.executable).parent
        self._spawn(
            CODE_SERVER,
            [
                str(bin_dir / "dagster"),
                "code-server",
                "start",
                "-m",
                "jobs_orchestration.definitions",
                "-a",
                "defs",
                "-h",
                "127.0.0.1",
                "-p",
                str(code_port),
                "--location-name",
                "jobs_orchestration",
            ],
            environment,
        )
        self._wait_for_port(code_port, "code server")
        self._spawn(
            "webserver",
            [
                str(bin_dir / "dagster-webserver"),
                "-w",
                str(workspace),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.ui_port),
            ],
            environment,
        )
        self._spawn("daemon", [str(bin_dir / "dagster-daemon"), "run", "-w", str(workspace)], environment)
        self._wait_for_ui()

    def _spawn(self, name: str, command: list[str], environment: dict[str, str]) -> None:
        log_file = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 (kept open for the child's life)
        process = subprocess.Popen(
            command,
            cwd=REPOSITORY_ROOT,
            env=environment,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._processes.append((name, process))

    def check_processes(self) -> None:
        """Raise, naming it and its log, if a process of the stack has exited."""
        for name, process in self._processes:
            if process.poll() is not None:
                raise RuntimeError(
                    f"the {name} exited with code {process.returncode}; see {self.workdir / (name + '.log')}"
                )

    def _wait_for_port(self, port: int, what: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_processes()
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.5)
        raise TimeoutError(f"the {what} did not listen on port {port} within {timeout:.0f} s")

    def _wait_for_ui(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_processes()
            try:
                with urllib.request.urlopen(f"{self.ui_url}/server_info", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"the Dagster UI did not answer at {self.ui_url} within {timeout:.0f} s")

    def run_forever(self) -> None:
        """Block until interrupted or until a process dies, then stop everything."""
        stop = False

        def request_stop(signum, frame) -> None:
            nonlocal stop
            stop = True

        previous = signal.signal(signal.SIGTERM, request_stop)
        try:
            while not stop:
                self.check_processes()
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            self.stop()

    def stop(self) -> None:
        for name, process in reversed(self._processes):  # the code server last: the daemon calls it
            if name == CODE_SERVER and self._code_server_port is not None:
                stop_code_server(process, self._code_server_port)
            else:
                signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for _, process in self._processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            # The group may hold grandchildren (run workers, code servers) even after its leader exits.
            signal_group(process, signal.SIGKILL)
            process.wait()
        self._processes.clear()
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        if self._environment_file is not None:
            # Left behind, it would point other shells' commands at ports nothing listens on any more.
            self._environment_file.unlink(missing_ok=True)
            self.log(f"removed {self._environment_file}: the stack it described has stopped")
            self._environment_file = None


def stop_code_server(process: subprocess.Popen, port: int) -> None:
    """Ask a Dagster code server on 127.0.0.1:`port` to end, with the server it runs the code in.

    A signal may not end it: Dagster's servers give SIGTERM whatever handles SIGINT, and a process
    started as a background job of a non-interactive shell (`make dev &` in a script) inherits SIGINT
    ignored, so SIGTERM is ignored too and the server lives until it is killed (with SIGINT at its
    default, as in a container, SIGTERM ends it). The ShutdownServer call ends it either way. SIGTERM is the fallback for a server that cannot answer; the caller kills what is left
    after its grace period."""
    try:
        DagsterGrpcClient(port=port, host="127.0.0.1").shutdown_server(timeout=5)
    except DagsterUserCodeUnreachableError:
        signal_group(process, signal.SIGTERM)


def signal_group(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)
