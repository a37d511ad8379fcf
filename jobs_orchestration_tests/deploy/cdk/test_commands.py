"""Every command a task definition or the health check runs exists in the environment the image
installs (the same lock as this venv), with the subcommands and options it is given."""

from __future__ import annotations

import shlex
import sys
from importlib import import_module
from importlib.metadata import entry_points
from pathlib import Path

import click
import pytest

from deploy.stack import contract
from jobs_orchestration.db import migrate

REPOSITORY = Path(__file__).resolve().parents[3]


def health_check_commands() -> list[list[str]]:
    """The commands deploy/healthcheck.sh runs with `exec`, python's excepted."""
    commands = []
    for line in (REPOSITORY / "deploy" / "healthcheck.sh").read_text().splitlines():
        line = line.strip()
        if line.startswith("exec ") and not line.startswith("exec python "):
            commands.append(shlex.split(line, comments=True)[1:])
    return commands


def migration_commands() -> list[list[str]]:
    commands = []
    for domain in contract.MIGRATION_DOMAINS:
        shell, flag, script = contract.migration_command(domain)
        assert (shell, flag) == ("sh", "-c")
        words = shlex.split(script)
        assert words[0] == "exec"
        commands.append(words[1:])
    return commands


COMMANDS = {
    "code server": contract.CODE_SERVER_COMMAND,
    "webserver": contract.WEBSERVER_COMMAND,
    "daemon": contract.DAEMON_COMMAND,
    **{f"migration {words[-1]}": words for words in migration_commands()},
    **{f"health check {' '.join(words[:3])}": words for words in health_check_commands()},
}


def click_command(script: str) -> click.Command:
    """The click command behind a console script: the entry point itself, or the module's `cli` when
    the entry point is a plain function that sets up the environment and calls it."""
    [entry] = [entry for entry in entry_points(group="console_scripts") if entry.name == script]
    loaded = entry.load()
    if isinstance(loaded, click.Command):
        return loaded
    candidate = getattr(import_module(entry.module), "cli", None)
    assert isinstance(candidate, click.Command), f"{script}: {entry.value} is not a click command"
    return candidate


def test_the_health_check_and_migrations_are_among_the_commands():
    assert {name for name in COMMANDS if name.startswith("health check")} == {
        "health check dagster api grpc-health-check",
        "health check dagster-daemon liveness-check",
    }
    assert {name for name in COMMANDS if name.startswith("migration")} == {
        "migration platform",
        "migration email_parser",
    }


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_command_exists_with_its_options(name):
    words = COMMANDS[name]
    script = Path(sys.executable).parent / words[0]
    assert script.is_file(), f"{words[0]} is not installed in the virtual environment"
    command = click_command(words[0])
    arguments = words[1:]
    while isinstance(command, click.Group) and arguments and not arguments[0].startswith("-"):
        subcommand = command.get_command(click.Context(command), arguments[0])
        assert subcommand is not None, f"{name}: {words[0]} has no subcommand {arguments[0]!r}"
        command, arguments = subcommand, arguments[1:]
    assert not isinstance(command, click.Group), f"{name}: {' '.join(words)} names a group, not a command"
    options = {option: parameter for parameter in command.params for option in parameter.opts}
    for index, word in enumerate(arguments):
        if word.startswith("--"):
            assert word in options, f"{name}: {' '.join(words)}: no option {word}"
            parameter = options[word]
            if isinstance(parameter.type, click.Choice):
                assert arguments[index + 1] in parameter.type.choices


def test_migrations_name_every_database_domain():
    assert set(contract.MIGRATION_DOMAINS) == set(migrate.DOMAINS)
