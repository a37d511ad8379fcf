"""The image: multi-stage, pinned, non-root, health-checked, built from the lock, and a build context
that holds what the Dockerfile copies. There is no container engine on these machines, so the
Dockerfile is read as text, instruction by instruction."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from deploy import lock_requirements
from deploy.stack import contract

REPOSITORY = Path(__file__).resolve().parents[2]
DOCKERFILE = REPOSITORY / "Dockerfile"
HEALTHCHECK_SCRIPT = REPOSITORY / "deploy" / "healthcheck.sh"
PINNED_BASE = re.compile(r"^python:3\.11\.\d+-slim-bookworm$")
BUILD_TOOLS = (
    "gcc",
    "g++",
    "cc",
    "make",
    "cmake",
    "build-essential",
    "clang",
    "git",
    "python3-dev",
    "libpq-dev",
)
INSTANCE_FILES = {"deploy/dagster.yaml"}
"""Copied into the image but written on the instance side of the deployment (its own branch of work);
the build context rules still have to let them through."""


@dataclass
class Instruction:
    keyword: str
    arguments: str

    def words(self) -> list[str]:
        if self.arguments.startswith("["):
            return json.loads(self.arguments)
        return shlex.split(self.arguments)


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [instruction for instruction in self.instructions if instruction.keyword == keyword]


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages with their instructions; continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    stages: list[Stage] = []
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        instruction = Instruction(keyword.upper(), arguments.strip())
        if instruction.keyword == "FROM":
            words = instruction.words()
            words = [word for word in words if not word.startswith("--platform")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        else:
            assert stages, f"{line!r} comes before the first FROM"
            stages[-1].instructions.append(instruction)
    return stages


def image_problems(text: str) -> list[str]:
    """What is wrong with a Dockerfile for this project's image; empty when nothing is."""
    stages = parse_dockerfile(text)
    problems = []
    final = stages[-1]
    if len(stages) < 2:
        problems.append("one stage only: the image would keep whatever built it")
    copied_from = {
        word.split("=", 1)[1]
        for instruction in final.all("COPY")
        for word in instruction.words()
        if word.startswith("--from=")
    }
    if not copied_from or not copied_from <= {stage.name for stage in stages[:-1]}:
        problems.append("the final stage does not take its environment from a build stage")
    for stage in stages:
        if not PINNED_BASE.match(stage.base):
            problems.append(f"FROM {stage.base} is not python:3.11.<patch>-slim-bookworm")
    users = final.all("USER")
    if not users or users[-1].arguments.split(":")[0] in ("root", "0"):
        problems.append("the final stage runs as root")
    elif final.all("RUN") and final.instructions.index(users[-1]) < final.instructions.index(
        final.all("RUN")[-1]
    ):
        problems.append("USER comes before the last RUN")
    for instruction in final.all("RUN"):
        for installer in (
            "apt-get install",
            "apt install",
            "apk add",
            "pip install",
            "pip wheel",
            "curl ",
            "wget ",
        ):
            if installer in instruction.arguments:
                problems.append(f"the final stage runs {installer.strip()!r}")
        tools = set(re.findall(r"[\w+.-]+", instruction.arguments)) & set(BUILD_TOOLS)
        if tools:
            problems.append(f"build tools in the final stage: {sorted(tools)}")
    checks = final.all("HEALTHCHECK")
    if not checks or "NONE" in checks[-1].arguments.upper():
        problems.append("no HEALTHCHECK")
    elif "/app/deploy/healthcheck.sh" not in checks[-1].arguments:
        problems.append("the HEALTHCHECK does not run deploy/healthcheck.sh")
    build = "\n".join(instruction.arguments for stage in stages[:-1] for instruction in stage.all("RUN"))
    if "--no-deps" not in build or "-r deploy/requirements.lock" not in build:
        problems.append("the dependencies are not installed from deploy/requirements.lock alone")
    if "pip check" not in build:
        problems.append("the build does not prove the lock holds every dependency (pip check)")
    environment = " ".join(instruction.arguments for instruction in final.all("ENV"))
    destinations = {instruction.words()[-1] for instruction in final.all("COPY")}
    if f"DAGSTER_HOME={contract.DAGSTER_HOME}" not in environment:
        problems.append(f"DAGSTER_HOME is not {contract.DAGSTER_HOME}")
    if f"{contract.DAGSTER_HOME}/dagster.yaml" not in destinations:
        problems.append("deploy/dagster.yaml is not copied into DAGSTER_HOME")
    if not any(word.rstrip("/") == "/app/deploy" for word in destinations):
        problems.append("deploy/ is not copied to /app/deploy")
    if not final.all("WORKDIR") or final.all("WORKDIR")[-1].arguments != "/app":
        problems.append("the working directory is not /app")
    return problems


def test_the_dockerfile_meets_every_rule():
    assert image_problems(DOCKERFILE.read_text()) == []


def test_the_rules_catch_a_careless_dockerfile():
    careless = """
        FROM python:3.11-slim
        RUN apt-get update && apt-get install -y gcc libpq-dev
        COPY . /src
        RUN pip install /src
        CMD ["dagster", "api", "grpc"]
    """
    problems = image_problems(careless)
    for expected in (
        "one stage only",
        "from a build stage",
        "FROM python:3.11-slim is not",
        "runs as root",
        "'apt-get install'",
        "'pip install'",
        "build tools in the final stage: ['gcc', 'libpq-dev']",
        "no HEALTHCHECK",
        "deploy/requirements.lock",
        "DAGSTER_HOME",
    ):
        assert any(expected in problem for problem in problems), (expected, problems)


def test_the_locks_pin_the_dependencies_installed_here():
    assert lock_requirements.LOCK_PATH.read_text() == lock_requirements.render(
        lock_requirements.runtime_closure()
    ), "deploy/requirements.lock is out of date: run .venv/bin/python deploy/lock_requirements.py"
    assert lock_requirements.TEST_LOCK_PATH.read_text() == lock_requirements.render(
        lock_requirements.test_closure(), lock_requirements.TEST_HEADER
    ), "requirements-test.lock is out of date: run .venv/bin/python deploy/lock_requirements.py"


def test_the_health_check_script_checks_each_role():
    assert os.access(HEALTHCHECK_SCRIPT, os.X_OK), "deploy/healthcheck.sh must be executable"
    script = HEALTHCHECK_SCRIPT.read_text()
    for role in contract.ROLES.values():
        assert re.search(rf"^\s*{re.escape(role)}\b.*\)", script, re.MULTILINE), f"no health check for {role}"
    assert f"--port {contract.CODE_SERVER_PORT}" in script and "grpc-health-check" in script
    assert f":{contract.WEBSERVER_PORT}/server_info" in script


@pytest.mark.parametrize(("role", "expected"), [("run", 0), ("", 0), ("scheduler", 1)])
def test_the_health_check_script_knows_its_roles(role, expected):
    result = subprocess.run(
        [str(HEALTHCHECK_SCRIPT)],
        env={**os.environ, contract.ROLE_VARIABLE: role},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == expected, result.stderr
    if expected:
        assert "scheduler" in result.stderr and contract.ROLE_VARIABLE in result.stderr


def test_the_build_context_holds_what_the_dockerfile_copies():
    rules = _dockerignore_rules()
    for stage in parse_dockerfile(DOCKERFILE.read_text()):
        for instruction in stage.all("COPY"):
            words = [word for word in instruction.words() if not word.startswith("--")]
            if any(word.startswith("--from=") for word in instruction.words()):
                continue
            for source in words[:-1]:
                path = source.rstrip("/")
                assert not _ignored(path, rules), f"COPY {source}: .dockerignore leaves it out of the context"
                if path not in INSTANCE_FILES:
                    assert (REPOSITORY / path).exists(), f"COPY {source}: no such file in the repository"
    assert _ignored(".venv/bin/python", rules) and _ignored("jobs_orchestration_tests/conftest.py", rules)
    assert _ignored("jobs_orchestration/__pycache__/settings.cpython-311.pyc", rules)
    assert not _ignored("jobs_orchestration/migrations/versions/platform/0001_initial.py", rules)
    assert not _ignored("deploy/healthcheck.sh", rules)


def _dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    """(re-include?, pattern) per line of .dockerignore, in order."""
    rules = []
    for line in (REPOSITORY / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        expression = ""
        index = 0
        while index < len(pattern):
            if pattern.startswith("**", index):
                expression += ".*"
                index += 2
            elif pattern[index] == "*":
                expression += "[^/]*"
                index += 1
            elif pattern[index] == "?":
                expression += "[^/]"
                index += 1
            else:
                expression += re.escape(pattern[index])
                index += 1
        rules.append((negated, re.compile(f"^{expression}$")))
    return rules


def _ignored(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent folders decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: end + 1]) for end in range(len(parts))]
    ignored = False
    for negated, pattern in rules:
        if any(pattern.match(candidate) for candidate in candidates):
            ignored = not negated
    return ignored
