import contextlib
import os
import signal
import stat
import subprocess
import threading
import urllib.request
from collections.abc import Iterator

import psutil
import pytest
from moto.moto_api._internal.models import moto_api_backend

from jobs_orchestration.devstack.demo import DEMO_SCRIPT_NAME
from jobs_orchestration.devstack.seed import SeedSizes
from jobs_orchestration.devstack.stack import CODE_SERVER, LocalStack, free_port, write_environment_file


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_the_stack_serves_the_ui_and_stops_without_leftovers(tmp_path, monkeypatch):
    monkeypatch.delenv("JOBS_DATABASE_URL", raising=False)
    marker = tmp_path / "ran"
    awkward = awkward_value(marker)
    stack = LocalStack(
        workdir=tmp_path / "local",
        dagster_home=tmp_path / "dagster_home",
        ui_port=free_port(),
        seed=SeedSizes(organizations=1, datasets_per_organization=2, packages_per_dataset=3, snapshots=4),
        extra_environment={"JOBS_AWKWARD_VALUE": awkward},
    )
    env_file = tmp_path / "local" / "env"
    demo_script = tmp_path / "local" / DEMO_SCRIPT_NAME
    demo_script.parent.mkdir()
    demo_script.write_text("echo left by an earlier start\n")
    # moto keeps its state per process, not per server: what another test of this process left on
    # the session's server would clash with what the stack creates.
    moto_api_backend.reset()
    with started_as_a_background_job(), stack:
        code_server = dict(stack._processes)[CODE_SERVER]
        children = [psutil.Process(process.pid) for _, process in stack._processes]
        descendants = [p for child in children for p in child.children(recursive=True)] + children
        with urllib.request.urlopen(f"{stack.ui_url}/server_info", timeout=5) as response:
            assert response.status == 200
        request = urllib.request.Request(
            f"{stack.ui_url}/graphql",
            data=b'{"query": "{ repositoriesOrError { ... on RepositoryConnection { nodes { name } } } }"}',
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert b"__repository__" in response.read()
        assert env_file.read_text().count("export JOBS_QUEUE_URL=") == 1
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        queue_url, value = sourced(env_file, "JOBS_QUEUE_URL", "JOBS_AWKWARD_VALUE")
        assert (queue_url, value) == (stack.aws.queue_url, awkward)
        assert not marker.exists()
        assert "enqueue delete-dataset" in demo_script.read_text()
        assert os.access(demo_script, os.X_OK)

    assert not env_file.exists()  # it would point other shells at a stack that is gone
    assert code_server.returncode == 0  # it ended when asked, not killed after the grace period
    gone, alive = psutil.wait_procs(descendants, timeout=10)
    assert alive == []
    assert not any(
        t.name.startswith("moto") for t in threading.enumerate() if t.is_alive() and "serve" in t.name
    )


@contextlib.contextmanager
def started_as_a_background_job() -> Iterator[None]:
    """SIGINT ignored, as a shell leaves it for `make dev &`; the stack's processes inherit that, and
    Dagster's servers then ignore SIGTERM too (they map it to SIGINT's handler)."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def awkward_value(marker) -> str:
    """Spaces, both quotes, command substitutions (which would create `marker` if run), a variable, a
    backslash and a newline."""
    return f"a b 'single' \"double\" $(touch {marker}) `touch {marker}` $HOME \\ end\nsecond line"


def sourced(env_file, *names: str) -> list[str]:
    """The values of `names` after `source env_file` in a fresh bash, byte for byte."""
    script = 'source "$1" && shift && for name in "$@"; do printf "%s\\0" "${!name}"; done'
    completed = subprocess.run(
        ["bash", "-c", script, "bash", str(env_file), *names], capture_output=True, check=True
    )
    return completed.stdout.decode().split("\0")[:-1]


def test_the_environment_file_is_created_private_and_gives_back_every_value_exactly(tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    env_file = tmp_path / "env"
    env_file.write_text("export OLD='from an earlier start'\n")
    env_file.chmod(0o644)
    environment = {"PLAIN": "value", "AWKWARD": awkward_value(marker), "EMPTY": ""}
    created_modes = []
    original_open = os.open

    def recording_open(path, flags, mode=0o777, *args, **kwargs):
        if str(path) == str(env_file) and flags & os.O_CREAT:
            created_modes.append(mode)
        return original_open(path, flags, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", recording_open)
    write_environment_file(env_file, environment)
    monkeypatch.undo()

    assert created_modes == [0o600]  # created private, not opened up first and narrowed after
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert sourced(env_file, *environment) == list(environment.values())
    assert sourced(env_file, "OLD") == [""]
    assert not marker.exists()


def test_an_environment_name_the_shell_cannot_take_is_refused(tmp_path):
    with pytest.raises(ValueError, match="'BAD NAME'"):
        write_environment_file(tmp_path / "env", {"BAD NAME": "x"})
    assert not (tmp_path / "env").exists()
