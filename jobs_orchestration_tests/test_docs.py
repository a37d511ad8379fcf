"""The documentation cannot drift from the code: docs/messages.md lists every job type and every field
limit the intake enforces (derived from the columns), the body limits and the dead-letter attributes;
every relative link in the README and docs/ names a file (and heading) that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from jobs_orchestration import settings
from jobs_orchestration.changelog.events import EVENT_TYPES
from jobs_orchestration.devstack.aws import MAX_RECEIVE_COUNT
from jobs_orchestration.intake import dead_letters
from jobs_orchestration.intake.handoff import IntakeLimits
from jobs_orchestration.intake.job_types import FieldLimit
from jobs_orchestration.intake.messages import (
    JOB_TYPES,
    LARGEST_DETAIL_BYTES,
    MAX_NESTING,
    SQS_MAX_BODY_BYTES,
)

REPOSITORY = Path(__file__).resolve().parents[1]
MESSAGES = REPOSITORY / "docs" / "messages.md"
DOCUMENTS = [REPOSITORY / "README.md", *sorted((REPOSITORY / "docs").glob("*.md"))]
LIMITS = [
    (type_name, limit) for type_name, job_type in JOB_TYPES.items() for limit in job_type.model.field_limits()
]


def limit_row(type_name: str, limit: FieldLimit) -> str:
    if limit.max_length is not None:
        bound = f"at most {limit.max_length} characters"
    else:
        bound = f"at most {limit.max_value}"
    return f"| `{type_name}` | `{limit.field}` | {bound} | `{limit.where}` |"


def table_rows(text: str, header: str) -> list[str]:
    """The body rows of the Markdown table whose header line is `header`."""
    lines = text.splitlines()
    start = lines.index(header) + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def test_every_job_type_is_documented_with_its_job():
    header = "| job type | what it starts | fields (all required unless marked optional) |"
    rows = table_rows(MESSAGES.read_text(), header)
    assert [row.split("|")[1].strip() for row in rows] == [f"`{name}`" for name in JOB_TYPES]


def test_the_limits_table_is_exactly_the_field_limits_of_the_code():
    rows = table_rows(MESSAGES.read_text(), "| job type | field | limit | stored in |")
    assert rows == [limit_row(type_name, limit) for type_name, limit in LIMITS]


def test_the_body_limits_and_the_event_catalogue_size_are_the_code_s():
    text = MESSAGES.read_text()
    assert f"at most {SQS_MAX_BODY_BYTES} bytes" in text
    assert f"at most {MAX_NESTING} levels" in text
    assert f"at most {LARGEST_DETAIL_BYTES} bytes as published" in text
    assert f"one of the {len(EVENT_TYPES)} names" in text
    assert f"{MAX_RECEIVE_COUNT} times (`maxReceiveCount`)" in text


def test_the_dead_letter_attributes_are_the_ones_sent():
    rows = table_rows(MESSAGES.read_text(), "| attribute | present | value |")
    documented = [row.split("|")[1].strip().strip("`") for row in rows]
    sent = [
        dead_letters.REASON,
        dead_letters.SOURCE_MESSAGE_ID,
        dead_letters.RUN_ID,
        dead_letters.DEAD_LETTERED_BY,
    ]
    assert documented == sent
    assert f"cut to {dead_letters.MAX_ATTRIBUTE_CHARS} characters" in rows[0]


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors_of(path: Path) -> set[str]:
    headings = re.findall(r"^#+ (.+)$", path.read_text(), flags=re.MULTILINE)
    return {github_anchor(heading) for heading in headings}


LINK = re.compile(r"\]\((?!https?:|mailto:|#)([^)\s]+)\)")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(REPOSITORY)))
def test_every_relative_link_names_a_file_and_heading_that_exist(document):
    for target in LINK.findall(document.read_text()):
        file_part, _, anchor = target.partition("#")
        linked = (document.parent / file_part).resolve()
        assert linked.exists(), f"{document.name} links to {target}, which does not exist"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors_of(linked), f"{document.name} links to {target}: no such heading"


def test_the_readme_names_every_job_sensor_schedule_asset_and_check():
    from jobs_orchestration.definitions import defs

    repository = defs.get_repository_def()
    names = {job.name for job in repository.get_all_jobs() if not job.name.startswith("__")}
    names |= {sensor.name for sensor in repository.sensor_defs}
    names |= {schedule.name for schedule in repository.schedule_defs}
    names |= {key.to_user_string() for key in repository.asset_graph.get_all_asset_keys()}
    names |= {key.name for key in repository.asset_graph.asset_check_keys}
    readme = (REPOSITORY / "README.md").read_text()
    assert sorted(name for name in names if f"`{name}`" not in readme) == []


def test_the_readme_points_at_the_contract_in_the_repository():
    readme = (REPOSITORY / "README.md").read_text()
    assert "(docs/messages.md)" in readme
    # A bare mention would send readers looking for a file outside the repository.
    assert not re.search(r"(?<![/\w])messages\.md", readme)


ENVIRONMENT_HEADER = "| variable | meaning |"
DEFAULTS_OWNED_ELSEWHERE = {
    settings.JOBS_INTAKE_BATCH_SIZE: IntakeLimits().batch_size,
    settings.JOBS_INTAKE_CHANGELOG_BATCH_SIZE: IntakeLimits().changelog_batch_size,
}
"""Variables whose default, when unset, is the intake core's own (`Settings` has None for them)."""


def documented_default(variable: str) -> str | int | None:
    info = next(info for info in settings.Settings.model_fields.values() if info.alias == variable)
    return DEFAULTS_OWNED_ELSEWHERE.get(variable, info.default)


def environment_table() -> list[str]:
    """The README's environment table as `Settings` declares it: a row a variable, in its order, with
    the field's description and its default."""
    rows = []
    for variable in settings.VARIABLES:
        info = next(info for info in settings.Settings.model_fields.values() if info.alias == variable)
        default = documented_default(variable)
        shown = "" if default is None else f" (`{default}`)" if isinstance(default, str) else f" ({default})"
        rows.append(f"| `{variable}` | {info.description}{shown} |")
    return rows


def test_the_readme_environment_table_is_the_settings():
    """Every variable the code reads, its meaning and its default, from `Settings`: a changed field
    fails here until the README's table says the same (the expected rows are in the failure)."""
    assert table_rows((REPOSITORY / "README.md").read_text(), ENVIRONMENT_HEADER) == environment_table()


def test_defaults_owned_elsewhere_are_not_written_in_the_settings_too():
    for variable in DEFAULTS_OWNED_ELSEWHERE:
        info = next(info for info in settings.Settings.model_fields.values() if info.alias == variable)
        assert info.default is None, f"{variable}: a default in Settings and in IntakeLimits"


# "`SNAPSHOT_RETENTION_DAYS` (default 7)", "`JOBS_INTAKE_BATCH_SIZE` (200)", "(500: ..." or "(an IANA
# name, default `Europe/Oslo`)": a default stated in the prose next to the variable's name.
STATED_DEFAULT = re.compile(r"`([A-Z][A-Z0-9_]+)` \((?:[^()]*?\bdefault\s+)?(\d+|`[^`]+`)")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(REPOSITORY)))
def test_the_defaults_stated_in_the_prose_are_the_code_s(document):
    stated = [
        (variable, value)
        for variable, value in STATED_DEFAULT.findall(document.read_text())
        if variable in settings.VARIABLES and documented_default(variable) is not None
    ]
    wrong = [
        (variable, value)
        for variable, value in stated
        if value.strip("`") != str(documented_default(variable))
    ]
    assert wrong == []
    if document.name == "README.md":
        assert {variable for variable, _ in stated} >= {
            settings.SNAPSHOT_RETENTION_DAYS,
            settings.SNAPSHOT_CLEANUP_TIMEZONE,
            settings.JOBS_INTAKE_BATCH_SIZE,
            settings.JOBS_INTAKE_CHANGELOG_BATCH_SIZE,
        }
