"""Message bodies a hostile or broken producer could put on the job queue, and valid ones to mix in.

Each hostile body comes with a label and the whole rejection reason it must get: the field, the value
or the rule that is broken, so an operator reading the dead-letter queue knows what to fix. A reason is
given as its exact text, or as a pattern it must match from end to end where part of it is worded by
a library that words it differently between versions (the JSON decoder). To add a case, add a line
to `_hostile` with the reason the operator should read.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from jobs_orchestration.changelog import events
from jobs_orchestration.intake.messages import MAX_VALUE_IN_REASON

SQS_MAX_BODY_BYTES = 256 * 1024
KNOWN_TYPES = "CachePopulationJob, DatasetChangelogEventJob, DeleteDatasetJob, DeletePackageJob"

Reason = str | re.Pattern[str]
"""The exact reason, or a pattern the whole reason must match."""


@dataclass(frozen=True)
class HostileMessage:
    label: str
    body: str
    reason: Reason

    def reason_matches(self, reason: str) -> bool:
        if isinstance(self.reason, re.Pattern):
            return self.reason.fullmatch(reason) is not None
        return reason == self.reason


def not_json(line: int) -> re.Pattern[str]:
    """The decoder's message and column are Python's own (both changed in 3.13 for some faults); the
    line where it stopped is the body's."""
    return re.compile(rf"body is not JSON: [^:]+: line {line} column \d+ \(char \d+\)")


def quoted(value: Any) -> str:
    """A value as a reason quotes it: JSON, cut after MAX_VALUE_IN_REASON characters."""
    text = json.dumps(value)
    return text if len(text) <= MAX_VALUE_IN_REASON else text[:MAX_VALUE_IN_REASON] + "..."


def field_error(type_name: str, field: str, problem: str, value: Any) -> str:
    return f"{type_name}: field {field}: {problem} (value {quoted(value)})"


def missing(type_name: str, *fields: str) -> str:
    return f"{type_name}: " + "; ".join(f"field {field} is missing" for field in fields)


def not_an_envelope(document: Any) -> str:
    return f"body must be an object with exactly one key, the job type name; got {quoted(document)}"


def unknown_event(index: int, event_type: str) -> str:
    return (
        f"DatasetChangelogEventJob: events[{index}] ({event_type}): eventType {event_type!r} "
        "is not a known changelog event type"
    )


INT32 = "must be a JSON integer from -2147483648 to 2147483647"
LICENSES = ", ".join(repr(name) for name in events.LICENSES)


def bad_detail(event_type: str, problem: str) -> str:
    return f"DatasetChangelogEventJob: events[0] ({event_type}): eventDetail of {event_type} is invalid: {problem}"


def _package(**overrides: Any) -> dict[str, Any]:
    fields = {"packageId": 42, "organizationId": 7, "userId": "N:user:1", "traceId": "t-1", "id": "p-1"}
    return _apply(fields, overrides)


def _dataset(**overrides: Any) -> dict[str, Any]:
    fields = {"datasetId": 13, "organizationId": 7, "userId": "N:user:1", "traceId": "t-2", "id": "d-1"}
    return _apply(fields, overrides)


def _cache(**overrides: Any) -> dict[str, Any]:
    return _apply({"dryRun": False, "organizationId": 7, "id": "s-1"}, overrides)


UPDATE_NAME = {"eventType": "UPDATE_NAME", "eventDetail": {"oldName": "a", "newName": "b"}}


def _changelog(**overrides: Any) -> dict[str, Any]:
    fields = {
        "organizationId": 7,
        "datasetId": 13,
        "userId": "N:user:1",
        "traceId": "t-3",
        "id": "c-1",
        "events": [UPDATE_NAME],
    }
    return _apply(fields, overrides)


_DROP = object()
"""An override value that removes the field."""


def _apply(fields: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = {**fields, **overrides}
    return {key: value for key, value in merged.items() if value is not _DROP}


def _json(type_name: str, fields: Any) -> str:
    return json.dumps({type_name: fields})


def _hostile() -> list[HostileMessage]:
    corpus: list[HostileMessage] = []

    def add(label: str, body: str, reason: Reason) -> None:
        corpus.append(HostileMessage(label, body, reason))

    # -- not JSON at all -----------------------------------------------------------------------------
    for label, body, line in [
        ("empty body", "", 1),
        ("whitespace only", "   \n\t", 2),
        ("plain text", "delete package 42 please", 1),
        ("truncated object", '{"DeletePackageJob": {"packageId": 42,', 1),
        ("single quotes", "{'DeletePackageJob': {'packageId': 42}}", 1),
        ("trailing comma", '{"DeletePackageJob": {"packageId": 42,}}', 1),
        ("unquoted key", '{DeletePackageJob: {"packageId": 42}}', 1),
        ("xml", "<DeletePackageJob><packageId>42</packageId></DeletePackageJob>", 1),
        ("two documents", '{"a": 1} {"b": 2}', 1),
        ("byte order mark", '\ufeff{"CachePopulationJob": {"dryRun": false, "id": "x"}}', 1),
        ("comment", '// job\n{"CachePopulationJob": {"dryRun": false, "id": "x"}}', 1),
        ("python literal", "{'CachePopulationJob': {'dryRun': False, 'id': 'x'}}", 1),
        ("unterminated string", '{"DeletePackageJob": "oops}', 1),
        ("bad escape", '{"DeletePackageJob": {"userId": "\\x41"}}', 1),
    ]:
        add(f"invalid JSON: {label}", body, not_json(line))

    # -- JSON, but not an envelope --------------------------------------------------------------------
    for label, document in [
        ("null", None),
        ("true", True),
        ("number", 42),
        ("string", "DeletePackageJob"),
        ("empty array", []),
        ("array of envelopes", [{"DeletePackageJob": _package()}]),
        ("empty object", {}),
        ("two top-level keys", {"DeletePackageJob": _package(), "DeleteDatasetJob": _dataset()}),
        ("type and fields side by side", {"type": "DeletePackageJob", **_package()}),
        ("flat fields without envelope", _package()),
        ("job and a stray key", {"DeletePackageJob": {}, "x": 1}),
    ]:
        add(f"wrong envelope: {label}", json.dumps(document), not_an_envelope(document))

    for label, type_name in [
        ("unknown type", "PurgeEverythingJob"),
        ("lower case", "deletepackagejob"),
        ("trailing space", "DeletePackageJob "),
        ("zero-width space in name", "DeletePackage\u200bJob"),
        ("right-to-left override in name", "\u202eDeletePackageJob"),
        ("SQL in type name", "DeletePackageJob'; DROP TABLE packages; --"),
        ("path in type name", "../../etc/passwd"),
        ("empty type name", ""),
        ("homoglyph (Cyrillic e)", "D\u0435letePackageJob"),
    ]:
        add(
            f"unknown job type: {label}",
            _json(type_name, _package()),
            f"unknown job type {type_name!r}; known: {KNOWN_TYPES}",
        )

    for label, fields in [
        ("fields null", None),
        ("fields a list", [_package()]),
        ("fields a string", json.dumps(_package())),
        ("fields a number", 42),
    ]:
        add(
            f"wrong envelope: {label}",
            _json("DeletePackageJob", fields),
            f"DeletePackageJob: the fields must be a JSON object; got {quoted(fields)}",
        )
    package_fields = ("id", "packageId", "organizationId", "userId", "traceId")
    add(
        "nested envelope",
        _json("DeletePackageJob", {"DeletePackageJob": _package()}),
        missing("DeletePackageJob", *package_fields),
    )
    add(
        "envelope of another type inside",
        _json("DeleteDatasetJob", {"DeletePackageJob": _package()}),
        missing("DeleteDatasetJob", "id", "datasetId", "organizationId", "userId", "traceId"),
    )

    # -- missing fields -------------------------------------------------------------------------------
    for type_name, build, names in [
        ("DeletePackageJob", _package, ["packageId", "organizationId", "userId", "traceId", "id"]),
        ("DeleteDatasetJob", _dataset, ["datasetId", "organizationId", "userId", "traceId", "id"]),
        ("CachePopulationJob", _cache, ["dryRun", "id"]),
        ("DatasetChangelogEventJob", _changelog, ["organizationId", "datasetId", "userId", "traceId", "id"]),
    ]:
        for name in names:
            add(
                f"{type_name} without {name}",
                _json(type_name, build(**{name: _DROP})),
                missing(type_name, name),
            )
    add("empty fields", _json("DeletePackageJob", {}), missing("DeletePackageJob", *package_fields))

    # -- ids of the wrong type or out of range -----------------------------------------------------
    positive = "Input should be greater than 0"
    integer = "Input should be a valid integer"
    bad_ids: list[tuple[str, Any, str]] = [
        ("negative", -1, positive),
        ("zero", 0, positive),
        ("numeric string", "42", integer),
        ("float", 42.0, integer),
        ("fractional float", 42.5, integer),
        ("boolean true", True, integer),
        ("boolean false", False, integer),
        ("null", None, integer),
        ("list", [42], integer),
        ("object", {"id": 42}, integer),
        ("SQL injection", "42 OR 1=1", integer),
        ("SQL injection with drop", "42; DROP TABLE packages; --", integer),
        ("path traversal", "../../../etc/passwd", integer),
        ("exponent", 1e3, integer),
    ]
    for label, value, problem in bad_ids:
        add(
            f"packageId {label}",
            _json("DeletePackageJob", _package(packageId=value)),
            field_error("DeletePackageJob", "packageId", problem, value),
        )
    for label, value in [("wider than its column", 2**31), ("wider than bigint", 2**64)]:
        add(
            f"packageId {label}",
            _json("DeletePackageJob", _package(packageId=value)),
            f"DeletePackageJob: field packageId is {value}; packages.id holds at most {2**31 - 1}",
        )
    for label, value in [("negative", -7), ("string", "7"), ("boolean", True), ("float", 7.5)]:
        problem = positive if label == "negative" else integer
        add(
            f"organizationId {label}",
            _json("DeleteDatasetJob", _dataset(organizationId=value)),
            field_error("DeleteDatasetJob", "organizationId", problem, value),
        )
        add(
            f"datasetId {label}",
            _json("DatasetChangelogEventJob", _changelog(datasetId=value)),
            field_error("DatasetChangelogEventJob", "datasetId", problem, value),
        )
    for name in ("NaN", "Infinity"):
        add(
            f"{name} id",
            f'{{"DeletePackageJob": {{"packageId": {name}, "organizationId": 7, "userId": "u", "traceId": "t", '
            '"id": "x"}}',
            f"DeletePackageJob: field packageId: {integer} (value {name})",
        )
    add(
        "CachePopulationJob organizationId zero",
        _json("CachePopulationJob", _cache(organizationId=0)),
        field_error("CachePopulationJob", "organizationId", positive, 0),
    )

    # -- other fields of the wrong type -----------------------------------------------------------------
    text = "Input should be a valid string"
    for label, name, value, problem in [
        ("job id a number", "id", 123, text),
        ("job id empty", "id", "", "String should have at least 1 character"),
        ("job id null", "id", None, text),
        ("userId a number", "userId", 3, text),
        ("userId a list", "userId", ["N:user:1"], text),
        ("traceId null", "traceId", None, text),
        ("traceId an object", "traceId", {"a": 1}, text),
    ]:
        add(
            f"DeletePackageJob {label}",
            _json("DeletePackageJob", _package(**{name: value})),
            field_error("DeletePackageJob", name, problem, value),
        )
    boolean = "Input should be a valid boolean"
    for label, name, value in [
        ("dryRun a string", "dryRun", "false"),
        ("dryRun a number", "dryRun", 0),
        ("dryRun null", "dryRun", None),
        ("deleteRedisData a string", "deleteRedisData", "yes"),
    ]:
        add(
            f"CachePopulationJob {label}",
            _json("CachePopulationJob", _cache(**{name: value})),
            field_error("CachePopulationJob", name, boolean, value),
        )

    # -- changelog events -----------------------------------------------------------------------------
    changelog = "DatasetChangelogEventJob"
    sql_type = "UPDATE_NAME'; DELETE FROM datasets; --"
    for label, event_list, reason in [
        (
            "events an object",
            UPDATE_NAME,
            field_error(changelog, "events", "Input should be a valid list", UPDATE_NAME),
        ),
        (
            "events a string",
            "UPDATE_NAME",
            field_error(changelog, "events", "Input should be a valid list", "UPDATE_NAME"),
        ),
        (
            "event a string",
            ["UPDATE_NAME"],
            field_error(
                changelog,
                "events.0",
                "Input should be a valid dictionary or instance of ChangelogEvent",
                "UPDATE_NAME",
            ),
        ),
        ("event without eventType", [{"eventDetail": {}}], missing(changelog, "events.0.eventType")),
        (
            "event without eventDetail",
            [{"eventType": "CREATE_DATASET"}],
            missing(changelog, "events.0.eventDetail"),
        ),
        (
            "eventDetail a list",
            [{"eventType": "CREATE_DATASET", "eventDetail": []}],
            field_error(changelog, "events.0.eventDetail", "Input should be a valid dictionary", []),
        ),
        (
            "unknown eventType",
            [{"eventType": "FORMAT_DISK", "eventDetail": {}}],
            unknown_event(0, "FORMAT_DISK"),
        ),
        ("SQL in eventType", [{"eventType": sql_type, "eventDetail": {}}], unknown_event(0, sql_type)),
        (
            "path in eventType",
            [{"eventType": "../../secrets", "eventDetail": {}}],
            unknown_event(0, "../../secrets"),
        ),
        (
            "zero-width in eventType",
            [{"eventType": "UPDATE_NAME\u200b", "eventDetail": {"oldName": "a", "newName": "b"}}],
            unknown_event(0, "UPDATE_NAME\u200b"),
        ),
        (
            "UPDATE_NAME without newName",
            [{"eventType": "UPDATE_NAME", "eventDetail": {"oldName": "a"}}],
            bad_detail("UPDATE_NAME", "field 'newName' is required"),
        ),
        (
            "UPDATE_NAME newName a number",
            [{"eventType": "UPDATE_NAME", "eventDetail": {"oldName": "a", "newName": 5}}],
            bad_detail("UPDATE_NAME", "field 'newName' Input should be a valid string (got 5)"),
        ),
        (
            "ADD_TAG without name",
            [{"eventType": "ADD_TAG", "eventDetail": {}}],
            bad_detail("ADD_TAG", "field 'name' is required"),
        ),
        (
            "UPDATE_LICENSE not a License of the platform",
            [{"eventType": "UPDATE_LICENSE", "eventDetail": {"newLicense": "WTFPL"}}],
            bad_detail(
                "UPDATE_LICENSE",
                f"field 'newLicense' is not a License; the License values are {LICENSES} (got 'WTFPL')",
            ),
        ),
        (
            "UPDATE_PERMISSION role in the wrong case",
            [{"eventType": "UPDATE_PERMISSION", "eventDetail": {"newRole": "Owner"}}],
            bad_detail(
                "UPDATE_PERMISSION",
                "field 'newRole' is not a Role; the Role values are 'guest', 'viewer', 'editor', 'manager', 'owner' "
                "(got 'Owner')",
            ),
        ),
        (
            "UPDATE_PERMISSION userId a node id",
            [{"eventType": "UPDATE_PERMISSION", "eventDetail": {"userId": "N:user:1"}}],
            bad_detail("UPDATE_PERMISSION", f"field 'userId' {INT32} (got 'N:user:1')"),
        ),
        (
            "RESTORE_PACKAGE id beyond Int32",
            [{"eventType": "RESTORE_PACKAGE", "eventDetail": {"id": 2**31}}],
            bad_detail("RESTORE_PACKAGE", f"field 'id' {INT32} (got 2147483648)"),
        ),
        (
            "publication status id a string",
            [{"eventType": "ACCEPT_PUBLICATION", "eventDetail": {"publicationStatusId": "21"}}],
            bad_detail("ACCEPT_PUBLICATION", f"field 'publicationStatusId' {INT32} (got '21')"),
        ),
        (
            "record id not a UUID",
            [{"eventType": "DELETE_RECORD", "eventDetail": {"id": "'; DROP TABLE records; --"}}],
            bad_detail(
                "DELETE_RECORD",
                """field 'id' must be a UUID such as 0b8e2a6c-94c4-4a5e-9a51-1b8a0f2f0c11 (got "'; DROP TABLE records; --")""",
            ),
        ),
        (
            "timestamp not a date",
            [{**UPDATE_NAME, "timestamp": "yesterday"}],
            f"{changelog}: events[0] (UPDATE_NAME): timestamp 'yesterday' is not an ISO 8601 date-time",
        ),
        (
            "timestamp a number",
            [{**UPDATE_NAME, "timestamp": 1622548800}],
            field_error(changelog, "events.0.timestamp", text, 1622548800),
        ),
        (
            "second event broken",
            [UPDATE_NAME, {"eventType": "NOPE", "eventDetail": {}}],
            unknown_event(1, "NOPE"),
        ),
    ]:
        add(f"changelog: {label}", _json(changelog, _changelog(events=event_list)), reason)
    single_type_only = _changelog(events=_DROP, eventType="UPDATE_NAME")
    add(
        "changelog: single-event form without eventDetail",
        _json(changelog, single_type_only),
        f"{changelog}: eventDetail is missing: the single-event form needs eventType and eventDetail",
    )
    single_detail_only = _changelog(events=_DROP, eventDetail={"oldName": "a", "newName": "b"})
    add(
        "changelog: single-event form without eventType",
        _json(changelog, single_detail_only),
        f"{changelog}: eventType is missing: the single-event form needs eventType and eventDetail",
    )

    # -- text that can be neither stored nor encoded ------------------------------------------------
    # The reasons quote the offending text with JSON escapes, so they can themselves be stored and sent.
    add(
        "lone high surrogate in userId",
        _json("DeletePackageJob", _package(userId="\ud800")),
        r'DeletePackageJob.userId contains a lone surrogate \ud800 at position 0: "\ud800"',
    )
    add(
        "lone low surrogate in traceId",
        _json("DeleteDatasetJob", _dataset(traceId="abc\udfff")),
        r'DeleteDatasetJob.traceId contains a lone surrogate \udfff at position 3: "abc\udfff"',
    )
    add(
        "lone surrogate in a key",
        _json("DeletePackageJob", {**_package(), "\udbff": 1}),
        r"key '\udbff' in DeletePackageJob contains a lone surrogate \udbff at position 0: " r'"\udbff"',
    )
    add(
        "lone surrogate in event detail",
        _json(
            changelog,
            _changelog(
                events=[{"eventType": "UPDATE_NAME", "eventDetail": {"oldName": "a", "newName": "b\ud83d"}}]
            ),
        ),
        rf'{changelog}.events[0].eventDetail.newName contains a lone surrogate \ud83d at position 1: "b\ud83d"',
    )
    add(
        "NUL in userId",
        _json("DeletePackageJob", _package(userId="N:user:1\u0000")),
        r'DeletePackageJob.userId contains a NUL character at position 8: "N:user:1\u0000"',
    )
    add(
        "NUL in job id",
        _json("DeleteDatasetJob", _dataset(id="\u0000")),
        r'DeleteDatasetJob.id contains a NUL character at position 0: "\u0000"',
    )
    add(
        "NUL in event detail",
        _json(changelog, _changelog(events=[{"eventType": "ADD_TAG", "eventDetail": {"name": "x\u0000y"}}])),
        rf'{changelog}.events[0].eventDetail.name contains a NUL character at position 1: "x\u0000y"',
    )
    add(
        "NUL in type name",
        _json("DeletePackageJob\u0000", _package()),
        r"key 'DeletePackageJob\x00' contains a NUL character at position 16: " r'"DeletePackageJob\u0000"',
    )

    # -- huge bodies, near the 256 KiB limit of SQS --------------------------------------------------
    padding = "9" * (SQS_MAX_BODY_BYTES - 2048)
    add(
        "huge id string",
        _json("DeletePackageJob", _package(packageId=padding)),
        field_error("DeletePackageJob", "packageId", integer, padding),
    )
    huge_events = [{"eventType": "NOPE", "eventDetail": {"n": i}} for i in range(4000)]
    add("huge list of bad events", _json(changelog, _changelog(events=huge_events)), unknown_event(0, "NOPE"))
    too_large = _json(changelog, _changelog(events=[{"eventType": "NOPE", "eventDetail": {"n": 1}}] * 8000))
    add(
        "body larger than SQS takes",
        too_large,
        f"body is {len(too_large.encode())} bytes; an SQS message holds at most 262144",
    )
    deep = "[" * 5000 + "]" * 5000
    add("deeply nested arrays", f'{{"DeletePackageJob": {deep}}}', "body is nested deeper than 32 levels")
    # A record property's old value is the one place a detail holds arbitrary JSON: the detail is
    # well formed but for its depth.
    deep_value = '{"a": ' * 900 + "1" + "}" * 900
    deep_detail = (
        '{"id": "5d7c1e2a-3b4f-4c6d-8e9f-0a1b2c3d4e5f", '
        f'"properties": [{{"name": "p", "oldValue": {deep_value}, "newValue": 1}}]}}'
    )
    add(
        "event detail nested 900 deep",
        '{"DatasetChangelogEventJob": {"organizationId": 7, "datasetId": 13, "userId": "u", "traceId": "t", '
        f'"id": "x", "events": [{{"eventType": "UPDATE_RECORD", "eventDetail": {deep_detail}}}]}}}}',
        # Seven levels down to the old value, then 26 more: the 33rd is one too deep.
        f"{changelog}.events[0].eventDetail.properties[0].oldValue{'.a' * 26} is nested deeper than 32 levels",
    )
    return corpus


HOSTILE_MESSAGES: list[HostileMessage] = _hostile()


def _valid() -> list[tuple[str, str]]:
    injection = "x'); DROP TABLE datasets; --"
    traversal = "../../../../etc/passwd"
    return [
        ("DeletePackageJob", _json("DeletePackageJob", _package())),
        (
            "DeletePackageJob with an unknown extra field",
            _json("DeletePackageJob", _package(priority="high")),
        ),
        (
            "DeletePackageJob with SQL in userId",
            _json("DeletePackageJob", _package(userId=injection, id="p-2")),
        ),
        ("DeleteDatasetJob", _json("DeleteDatasetJob", _dataset())),
        (
            "DeleteDatasetJob with a path in traceId",
            _json("DeleteDatasetJob", _dataset(traceId=traversal, id="d-2")),
        ),
        ("CachePopulationJob for one organization", _json("CachePopulationJob", _cache())),
        (
            "CachePopulationJob for all organizations",
            _json("CachePopulationJob", _cache(organizationId=_DROP, id="s-2")),
        ),
        (
            "CachePopulationJob dry run with deleteRedisData null",
            _json("CachePopulationJob", _cache(dryRun=True, deleteRedisData=None, id="s-3")),
        ),
        ("DatasetChangelogEventJob", _json("DatasetChangelogEventJob", _changelog())),
        (
            "DatasetChangelogEventJob single-event form",
            _json("DatasetChangelogEventJob", _changelog(events=_DROP, id="c-2", **UPDATE_NAME)),
        ),
        (
            "DatasetChangelogEventJob without events",
            _json("DatasetChangelogEventJob", _changelog(events=_DROP, id="c-3")),
        ),
        (
            "DatasetChangelogEventJob with SQL, RTL, zero-width and emoji text",
            _json(
                "DatasetChangelogEventJob",
                _changelog(
                    id="c-4",
                    events=[
                        {
                            "eventType": "UPDATE_NAME",
                            "eventDetail": {"oldName": injection, "newName": "\u202eevil\u200b\U0001f600"},
                        },
                        {
                            "eventType": "ADD_TAG",
                            "eventDetail": {"name": traversal},
                            "timestamp": "2021-06-01T14:00+02:00[Europe/Paris]",
                        },
                    ],
                ),
            ),
        ),
        (
            "DatasetChangelogEventJob restoring a package and updating the changelog",
            _json(
                "DatasetChangelogEventJob",
                _changelog(
                    id="c-5",
                    events=[
                        {
                            "eventType": "RESTORE_PACKAGE",
                            "eventDetail": {"id": 42, "name": "scan (1).nii", "originalName": traversal},
                        },
                        {"eventType": "UPDATE_CHANGELOG", "eventDetail": {"newChangelog": injection}},
                    ],
                ),
            ),
        ),
    ]


VALID_MESSAGES: list[tuple[str, str]] = _valid()
"""(label, body): every job type, including free-text fields that carry hostile-looking strings (data,
not code: they must be carried through unchanged)."""
