import threading
import urllib.request

import psutil
import pytest

from jobs_orchestration.devstack.seed import SeedSizes
from jobs_orchestration.devstack.stack import LocalStack, free_port


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_the_stack_serves_the_ui_and_stops_without_leftovers(tmp_path, monkeypatch):
    monkeypatch.delenv("JOBS_DATABASE_URL", raising=False)
    stack = LocalStack(
        workdir=tmp_path / "local",
        dagster_home=tmp_path / "dagster_home",
        ui_port=free_port(),
        seed=SeedSizes(organizations=1, datasets_per_organization=1, packages_per_dataset=3, snapshots=4),
    )
    with stack:
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
        assert (tmp_path / "local" / "env").read_text().count("export JOBS_QUEUE_URL=") == 1

    gone, alive = psutil.wait_procs(descendants, timeout=10)
    assert alive == []
    assert not any(t.name.startswith("moto") for t in threading.enumerate() if t.is_alive() and "serve" in t.name)
