"""Azurite, Azure Storage's emulator from the npm registry, started on a free port for the tests.

`make azurite` installs it under `.tools/`; `make test` depends on that target, so a fresh clone gets it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from jobs_orchestration_tests.support.processes import stop_process

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
AZURITE_BLOB = REPOSITORY_ROOT / ".tools" / "node_modules" / ".bin" / "azurite-blob"

# Azurite's documented development account; the key is public and works only against the emulator.
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class AzuriteUnavailable(RuntimeError):
    pass


def connection_string(port: int) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT_NAME};"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AzuriteUnavailable(f"azurite-blob exited with code {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AzuriteUnavailable(f"azurite-blob did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


@contextmanager
def running_azurite(location: Path | None, timeout: float = 30.0) -> Iterator[str]:
    """Start azurite-blob on 127.0.0.1 and a free port, yield its connection string, stop it. With no
    location its data stays in memory (the benchmark's choice: the disk would be what it timed)."""
    if not AZURITE_BLOB.exists() or shutil.which("node") is None:
        raise AzuriteUnavailable(
            f"{AZURITE_BLOB} is missing (or node is not installed): run `make azurite` "
            "(npm install --prefix .tools azurite@3)"
        )
    port = _free_port()
    process = subprocess.Popen(
        [
            str(AZURITE_BLOB),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            *(["--location", str(location)] if location is not None else ["--inMemoryPersistence"]),
            "--silent",
            "--skipApiVersionCheck",
            "--loose",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for_port(port, process, timeout)
        yield connection_string(port)
    finally:
        stop_process(process)
