"""The demo's deletions and the job messages an operator sends in a first hour with the local stack.

After seeding, the platform's API is played once: one dataset and a few package trees are set to
DELETING, as the API does before it asks for their deletion. The messages that ask for it, a changelog
event and one message that is bound to be dead-lettered are written to a shell script beside the
stack's environment file, ready to send with `jobs-orchestration enqueue`.

The targets follow from the seeded rows alone (lowest ids first), so the same seed gives the same
targets; the messages get fresh job ids each time they are sent, as real producers' do.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import click
import sqlalchemy as sa
from sqlalchemy import Connection

from jobs_orchestration import settings
from jobs_orchestration.db.engine import create_db_engine
from jobs_orchestration.db.platform import Dataset, DatasetState, Package, PackageState, PackageType

DEMO_SCRIPT_NAME = "demo-messages.sh"


@dataclass(frozen=True)
class DemoTargets:
    organization_id: int
    user_node_id: str
    package_ids: tuple[int, ...]
    """Packages set to DELETING with everything under them: a folder and a time-series recording."""
    deleting_package_count: int
    """Those packages and their descendants."""
    dataset_id: int
    """The dataset set to DELETING."""
    changelog_dataset_id: int
    changelog_dataset_name: str
    refused_package_id: int
    """A package left READY: a deletion of it is refused by its run and dead-lettered."""


class NotEnoughDemoData(ValueError):
    """The seeded organization has too few datasets or packages to hold every demo target."""


def mark_demo_deletions(connection: Connection, organization_id: int, user_node_id: str) -> DemoTargets:
    """Set the organization's last dataset and, in its first dataset, the first root folder (with its
    subtree) and the time-series recording to DELETING; choose the rest of the targets."""
    datasets = connection.execute(
        sa.select(Dataset.id, Dataset.name)
        .where(Dataset.organization_id == organization_id)
        .order_by(Dataset.id)
    ).all()
    if len(datasets) < 2:
        raise NotEnoughDemoData(
            f"organization {organization_id} has {len(datasets)} dataset(s); the demo needs 2: one to "
            "delete, one whose packages are deleted and whose changelog is written"
        )
    kept, deleted = datasets[0], datasets[-1]
    packages = connection.execute(
        sa.select(Package.id, Package.parent_id, Package.package_type)
        .where(Package.dataset_id == kept.id)
        .order_by(Package.id)
    ).all()
    children: dict[int | None, list[int]] = {}
    for package in packages:
        children.setdefault(package.parent_id, []).append(package.id)
    folders = [p.id for p in packages if p.parent_id is None and p.package_type == PackageType.COLLECTION]
    recordings = [p.id for p in packages if p.package_type == PackageType.TIME_SERIES]
    roots = [*folders[:1], *recordings[:1]]
    if not roots:
        raise NotEnoughDemoData(f"dataset {kept.id} has no root folder or recording to delete")
    subtree = _with_descendants(roots, children)
    untouched = [p.id for p in packages if p.id not in subtree and p.package_type != PackageType.COLLECTION]
    if not untouched:
        raise NotEnoughDemoData(f"dataset {kept.id} has no package left READY for the refused deletion")

    connection.execute(sa.update(Dataset).where(Dataset.id == deleted.id).values(state=DatasetState.DELETING))
    connection.execute(
        sa.update(Package).where(Package.id.in_(sorted(subtree))).values(state=PackageState.DELETING)
    )
    return DemoTargets(
        organization_id=organization_id,
        user_node_id=user_node_id,
        package_ids=tuple(roots),
        deleting_package_count=len(subtree),
        dataset_id=deleted.id,
        changelog_dataset_id=kept.id,
        changelog_dataset_name=kept.name,
        refused_package_id=untouched[0],
    )


def _with_descendants(roots: Sequence[int], children: dict[int | None, list[int]]) -> set[int]:
    found: set[int] = set()
    stack = list(roots)
    while stack:
        package_id = stack.pop()
        if package_id not in found:
            found.add(package_id)
            stack.extend(children.get(package_id, []))
    return found


@dataclass(frozen=True)
class DemoMessage:
    name: str
    """What the script calls it: `demo-messages.sh <name>`."""
    description: str
    commands: tuple[tuple[str, ...], ...]
    """Arguments of `jobs-orchestration`, one command (and one message) each."""


def demo_messages(targets: DemoTargets) -> list[DemoMessage]:
    """The demo's messages, the one bound to be dead-lettered last."""
    who = ("--organization-id", str(targets.organization_id), "--user-id", targets.user_node_id)
    packages = " and ".join(str(package_id) for package_id in targets.package_ids)
    new_name = f"{targets.changelog_dataset_name} (renamed)"
    detail = json.dumps({"oldName": targets.changelog_dataset_name, "newName": new_name})
    return [
        DemoMessage(
            "delete-packages",
            f"delete packages {packages} with everything under them "
            f"({targets.deleting_package_count} packages, all DELETING)",
            tuple(
                ("enqueue", "delete-package", "--package-id", str(package_id), *who)
                for package_id in targets.package_ids
            ),
        ),
        DemoMessage(
            "delete-dataset",
            f"delete dataset {targets.dataset_id} (DELETING) with its packages and assets",
            (("enqueue", "delete-dataset", "--dataset-id", str(targets.dataset_id), *who),),
        ),
        DemoMessage(
            "changelog",
            f"rename dataset {targets.changelog_dataset_id}: an UPDATE_NAME event, recorded and published",
            (
                (
                    "enqueue",
                    "changelog",
                    "--dataset-id",
                    str(targets.changelog_dataset_id),
                    *who,
                    "--event",
                    "UPDATE_NAME",
                    "--detail",
                    detail,
                ),
            ),
        ),
        DemoMessage(
            "bad-deletion",
            f"delete package {targets.refused_package_id}, left READY (not DELETING) by the demo: its run "
            "refuses it and sends it to the dead-letter queue",
            (("enqueue", "delete-package", "--package-id", str(targets.refused_package_id), *who),),
        ),
    ]


def demo_script(targets: DemoTargets, command: Path) -> str:
    """A bash script that sends the demo's messages with `command` (the `jobs-orchestration`
    executable) to the stack described by the `env` file beside it."""
    messages = demo_messages(targets)
    names = " ".join(message.name for message in messages)
    branches = []
    for message in messages:
        lines = [f"      echo {shlex.quote(f'{message.name}: {message.description}')}"]
        lines += [f'      "$cli" {shlex.join(arguments)}' for arguments in message.commands]
        branches.append(f"    {message.name})\n" + "\n".join(lines) + "\n      ;;")
    fix = shlex.join(["-m", __name__, "mark-deleting", "--package-id", str(targets.refused_package_id)])
    return f"""#!/usr/bin/env bash
# Written by `jobs-orchestration dev` for its demo data (organization {targets.organization_id}, user
# {targets.user_node_id}); rewritten at every start. Sends job messages to the running stack, as the
# platform's services do; each command prints the SQS message id.
#
#   .local/{DEMO_SCRIPT_NAME}              every message, the one bound to be dead-lettered last
#   .local/{DEMO_SCRIPT_NAME} NAME...      only these: {names}
#   .local/{DEMO_SCRIPT_NAME} fix-bad-deletion
#       marks package {targets.refused_package_id} DELETING, as the platform's API would, so that
#       `jobs-orchestration dlq redrive` can then replay its dead letter to success
set -euo pipefail
here="$(cd "$(dirname "${{BASH_SOURCE[0]}}")" && pwd)"
if [ ! -f "$here/env" ]; then
  echo "$here/env is missing: start the stack first (make dev)" >&2
  exit 1
fi
source "$here/env"
cli={shlex.quote(str(command))}
python={shlex.quote(str(command.parent / "python"))}

send() {{
  case "$1" in
{chr(10).join(branches)}
    fix-bad-deletion)
      "$python" {fix}
      ;;
    *)
      echo "unknown demo message $1; known: {names} fix-bad-deletion" >&2
      return 2
      ;;
  esac
}}

if [ "$#" -eq 0 ]; then
  set -- {names}
fi
for name in "$@"; do
  send "$name"
done
"""


def write_demo_script(path: Path, targets: DemoTargets, command: Path) -> None:
    path.write_text(demo_script(targets, command))
    path.chmod(0o755)


def mark_package_deleting(connection: Connection, package_id: int) -> None:
    """What the platform's API does before it asks for a package's deletion (the package alone)."""
    state = connection.execute(sa.select(Package.state).where(Package.id == package_id)).scalar_one_or_none()
    if state is None:
        raise ValueError(f"package {package_id} does not exist: nothing changed")
    if state == PackageState.DELETED:
        raise ValueError(f"package {package_id} is DELETED already: nothing changed")
    connection.execute(sa.update(Package).where(Package.id == package_id).values(state=PackageState.DELETING))


@click.group()
def main() -> None:
    """The demo's stand-in for the platform's API."""


@main.command("mark-deleting")
@click.option("--package-id", type=int, required=True)
@click.option("--database-url", envvar=settings.JOBS_DATABASE_URL, show_envvar=True, required=True)
def mark_deleting(package_id: int, database_url: str) -> None:
    """Set a package to DELETING, as the platform's API does before it sends a DeletePackageJob."""
    engine = create_db_engine(database_url)
    try:
        with engine.begin() as connection:
            mark_package_deleting(connection, package_id)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    finally:
        engine.dispose()
    click.echo(f"package {package_id} is DELETING")


if __name__ == "__main__":
    main()
