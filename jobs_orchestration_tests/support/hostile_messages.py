"""Message bodies a hostile or broken producer could put on the job queue, and valid ones to mix in.

Each hostile body comes with a label and a fragment the rejection reason must contain: the field, the
value or the rule that is broken, so an operator reading the dead-letter queue knows what to fix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

SQS_MAX_BODY_BYTES = 256 * 1024


@dataclass(frozen=True)
class HostileMessage:
    label: str
    body: str
    reason_names: str
    """A fragment the rejection reason must contain (case-sensitive)."""


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

    def add(label: str, body: str, reason_names: str) -> None:
        corpus.append(HostileMessage(label, body, reason_names))

    # -- not JSON at all -----------------------------------------------------------------------------
    for label, body in [
        ("empty body", ""),
        ("whitespace only", "   \n\t"),
        ("plain text", "delete package 42 please"),
        ("truncated object", '{"DeletePackageJob": {"packageId": 42,'),
        ("single quotes", "{'DeletePackageJob': {'packageId': 42}}"),
        ("trailing comma", '{"DeletePackageJob": {"packageId": 42,}}'),
        ("unquoted key", '{DeletePackageJob: {"packageId": 42}}'),
        ("xml", "<DeletePackageJob><packageId>42</packageId></DeletePackageJob>"),
        ("two documents", '{"a": 1} {"b": 2}'),
        ("byte order mark", '\ufeff{"CachePopulationJob": {"dryRun": false, "id": "x"}}'),
        ("comment", '// job\n{"CachePopulationJob": {"dryRun": false, "id": "x"}}'),
        ("python literal", "{'CachePopulationJob': {'dryRun': False, 'id': 'x'}}"),
        ("unterminated string", '{"DeletePackageJob": "oops}'),
        ("bad escape", '{"DeletePackageJob": {"userId": "\\x41"}}'),
    ]:
        add(f"invalid JSON: {label}", body, "not JSON")

    # -- JSON, but not an envelope --------------------------------------------------------------------
    for label, body in [
        ("null", "null"),
        ("true", "true"),
        ("number", "42"),
        ("string", '"DeletePackageJob"'),
        ("empty array", "[]"),
        ("array of envelopes", json.dumps([{"DeletePackageJob": _package()}])),
        ("empty object", "{}"),
        ("two top-level keys", json.dumps({"DeletePackageJob": _package(), "DeleteDatasetJob": _dataset()})),
        ("type and fields side by side", json.dumps({"type": "DeletePackageJob", **_package()})),
        ("flat fields without envelope", json.dumps(_package())),
        ("job and a stray key", '{"DeletePackageJob": {}, "x": 1}'),
    ]:
        add(f"wrong envelope: {label}", body, "exactly one key")

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
        add(f"unknown job type: {label}", _json(type_name, _package()), "unknown job type")

    for label, fields in [
        ("fields null", None),
        ("fields a list", [_package()]),
        ("fields a string", json.dumps(_package())),
        ("fields a number", 42),
    ]:
        add(f"wrong envelope: {label}", _json("DeletePackageJob", fields), "must be a JSON object")
    add(
        "nested envelope",
        _json("DeletePackageJob", {"DeletePackageJob": _package()}),
        "packageId is missing",
    )
    add(
        "envelope of another type inside",
        _json("DeleteDatasetJob", {"DeletePackageJob": _package()}),
        "datasetId is missing",
    )

    # -- missing fields -------------------------------------------------------------------------------
    for type_name, build, names in [
        ("DeletePackageJob", _package, ["packageId", "organizationId", "userId", "traceId", "id"]),
        ("DeleteDatasetJob", _dataset, ["datasetId", "organizationId", "userId", "traceId", "id"]),
        ("CachePopulationJob", _cache, ["dryRun", "id"]),
        ("DatasetChangelogEventJob", _changelog, ["organizationId", "datasetId", "userId", "traceId", "id"]),
    ]:
        for name in names:
            add(f"{type_name} without {name}", _json(type_name, build(**{name: _DROP})), f"{name} is missing")
    add("empty fields", _json("DeletePackageJob", {}), "packageId is missing")

    # -- ids of the wrong type or out of range -----------------------------------------------------
    bad_ids: list[tuple[str, Any, str]] = [
        ("negative", -1, "greater than 0"),
        ("zero", 0, "greater than 0"),
        ("numeric string", "42", "valid integer"),
        ("float", 42.0, "valid integer"),
        ("fractional float", 42.5, "valid integer"),
        ("boolean true", True, "valid integer"),
        ("boolean false", False, "valid integer"),
        ("null", None, "valid integer"),
        ("list", [42], "valid integer"),
        ("object", {"id": 42}, "valid integer"),
        ("wider than the column", 2**31, "packages.id holds at most 2147483647"),
        ("wider than bigint", 2**64, "packages.id holds at most 2147483647"),
        ("SQL injection", "42 OR 1=1", "valid integer"),
        ("SQL injection with drop", "42; DROP TABLE packages; --", "valid integer"),
        ("path traversal", "../../../etc/passwd", "valid integer"),
        ("exponent", 1e3, "valid integer"),
    ]
    for label, value, expected in bad_ids:
        add(
            f"packageId {label}",
            _json("DeletePackageJob", _package(packageId=value)),
            expected if "holds at most" in expected else
            f"packageId: Input should be {expected}" if expected != "valid integer" else "packageId",
        )
    for label, value in [("negative", -7), ("string", "7"), ("boolean", True), ("float", 7.5)]:
        add(
            f"organizationId {label}",
            _json("DeleteDatasetJob", _dataset(organizationId=value)),
            "organizationId",
        )
        add(f"datasetId {label}", _json("DatasetChangelogEventJob", _changelog(datasetId=value)), "datasetId")
    add(
        "NaN id",
        '{"DeletePackageJob": {"packageId": NaN, "organizationId": 7, "userId": "u", "traceId": "t", "id": "x"}}',
        "packageId",
    )
    add(
        "Infinity id",
        '{"DeletePackageJob": {"packageId": Infinity, "organizationId": 7, "userId": "u", "traceId": "t", "id": "x"}}',
        "packageId",
    )
    add(
        "CachePopulationJob organizationId zero",
        _json("CachePopulationJob", _cache(organizationId=0)),
        "organizationId",
    )

    # -- other fields of the wrong type -----------------------------------------------------------------
    for label, fields, name in [
        ("job id a number", _package(id=123), "field id"),
        ("job id empty", _package(id=""), "field id"),
        ("job id null", _package(id=None), "field id"),
        ("userId a number", _package(userId=3), "userId"),
        ("userId a list", _package(userId=["N:user:1"]), "userId"),
        ("traceId null", _package(traceId=None), "traceId"),
        ("traceId an object", _package(traceId={"a": 1}), "traceId"),
    ]:
        add(f"DeletePackageJob {label}", _json("DeletePackageJob", fields), name)
    for label, fields in [
        ("dryRun a string", _cache(dryRun="false")),
        ("dryRun a number", _cache(dryRun=0)),
        ("dryRun null", _cache(dryRun=None)),
    ]:
        add(f"CachePopulationJob {label}", _json("CachePopulationJob", fields), "dryRun")
    add(
        "CachePopulationJob deleteRedisData a string",
        _json("CachePopulationJob", _cache(deleteRedisData="yes")),
        "deleteRedisData",
    )

    # -- changelog events -----------------------------------------------------------------------------
    for label, events, name in [
        ("events an object", UPDATE_NAME, "events"),
        ("events a string", "UPDATE_NAME", "events"),
        ("event a string", ["UPDATE_NAME"], "events.0"),
        ("event without eventType", [{"eventDetail": {}}], "eventType is missing"),
        ("event without eventDetail", [{"eventType": "CREATE_DATASET"}], "eventDetail is missing"),
        ("eventDetail a list", [{"eventType": "CREATE_DATASET", "eventDetail": []}], "eventDetail"),
        ("unknown eventType", [{"eventType": "FORMAT_DISK", "eventDetail": {}}], "FORMAT_DISK"),
        (
            "SQL in eventType",
            [{"eventType": "UPDATE_NAME'; DELETE FROM datasets; --", "eventDetail": {}}],
            "DELETE FROM datasets",
        ),
        ("path in eventType", [{"eventType": "../../secrets", "eventDetail": {}}], "../../secrets"),
        (
            "zero-width in eventType",
            [{"eventType": "UPDATE_NAME\u200b", "eventDetail": {"oldName": "a", "newName": "b"}}],
            "events[0]",
        ),
        (
            "UPDATE_NAME without newName",
            [{"eventType": "UPDATE_NAME", "eventDetail": {"oldName": "a"}}],
            "newName",
        ),
        (
            "UPDATE_NAME newName a number",
            [{"eventType": "UPDATE_NAME", "eventDetail": {"oldName": "a", "newName": 5}}],
            "newName",
        ),
        ("ADD_TAG without name", [{"eventType": "ADD_TAG", "eventDetail": {}}], "name"),
        (
            "UPDATE_LICENSE not a License of the platform",
            [{"eventType": "UPDATE_LICENSE", "eventDetail": {"newLicense": "WTFPL"}}],
            "field 'newLicense' is not a License",
        ),
        (
            "UPDATE_PERMISSION role in the wrong case",
            [{"eventType": "UPDATE_PERMISSION", "eventDetail": {"newRole": "Owner"}}],
            "field 'newRole' is not a Role",
        ),
        (
            "UPDATE_PERMISSION userId a node id",
            [{"eventType": "UPDATE_PERMISSION", "eventDetail": {"userId": "N:user:1"}}],
            "field 'userId' must be a JSON integer",
        ),
        (
            "RESTORE_PACKAGE id beyond Int32",
            [{"eventType": "RESTORE_PACKAGE", "eventDetail": {"id": 2**31}}],
            "field 'id' must be a JSON integer",
        ),
        (
            "publication status id a string",
            [{"eventType": "ACCEPT_PUBLICATION", "eventDetail": {"publicationStatusId": "21"}}],
            "field 'publicationStatusId' must be a JSON integer",
        ),
        (
            "record id not a UUID",
            [{"eventType": "DELETE_RECORD", "eventDetail": {"id": "'; DROP TABLE records; --"}}],
            "field 'id' must be a UUID",
        ),
        ("timestamp not a date", [{**UPDATE_NAME, "timestamp": "yesterday"}], "yesterday"),
        ("timestamp a number", [{**UPDATE_NAME, "timestamp": 1622548800}], "timestamp"),
        ("second event broken", [UPDATE_NAME, {"eventType": "NOPE", "eventDetail": {}}], "events[1]"),
    ]:
        add(f"changelog: {label}", _json("DatasetChangelogEventJob", _changelog(events=events)), name)
    single_type_only = _changelog(events=_DROP, eventType="UPDATE_NAME")
    add(
        "changelog: single-event form without eventDetail",
        _json("DatasetChangelogEventJob", single_type_only),
        "eventDetail is missing",
    )
    single_detail_only = _changelog(events=_DROP, eventDetail={"oldName": "a", "newName": "b"})
    add(
        "changelog: single-event form without eventType",
        _json("DatasetChangelogEventJob", single_detail_only),
        "eventType is missing",
    )

    # -- text that can be neither stored nor encoded ------------------------------------------------
    add(
        "lone high surrogate in userId",
        _json("DeletePackageJob", _package(userId="\ud800")),
        "userId contains a lone surrogate",
    )
    add(
        "lone low surrogate in traceId",
        _json("DeleteDatasetJob", _dataset(traceId="abc\udfff")),
        "traceId contains a lone surrogate",
    )
    add("lone surrogate in a key", _json("DeletePackageJob", {**_package(), "\udbff": 1}), "lone surrogate")
    add(
        "lone surrogate in event detail",
        _json(
            "DatasetChangelogEventJob",
            _changelog(
                events=[{"eventType": "UPDATE_NAME", "eventDetail": {"oldName": "a", "newName": "b\ud83d"}}]
            ),
        ),
        "newName contains a lone surrogate",
    )
    add(
        "NUL in userId",
        _json("DeletePackageJob", _package(userId="N:user:1\u0000")),
        "userId contains a NUL character",
    )
    add("NUL in job id", _json("DeleteDatasetJob", _dataset(id="\u0000")), "id contains a NUL character")
    add(
        "NUL in event detail",
        _json(
            "DatasetChangelogEventJob",
            _changelog(events=[{"eventType": "ADD_TAG", "eventDetail": {"name": "x\u0000y"}}]),
        ),
        "name contains a NUL character",
    )
    add("NUL in type name", _json("DeletePackageJob\u0000", _package()), "NUL character")

    # -- huge bodies, near the 256 KiB limit of SQS --------------------------------------------------
    padding = "9" * (SQS_MAX_BODY_BYTES - 2048)
    add("huge id string", _json("DeletePackageJob", _package(packageId=padding)), "packageId")
    huge_events = [{"eventType": "NOPE", "eventDetail": {"n": i}} for i in range(4000)]
    add(
        "huge list of bad events",
        _json("DatasetChangelogEventJob", _changelog(events=huge_events)),
        "events[0]",
    )
    add(
        "body larger than SQS takes",
        _json("DatasetChangelogEventJob", _changelog(events=[{"eventType": "NOPE", "eventDetail": {"n": 1}}] * 8000)),
        "an SQS message holds at most 262144",
    )
    deep = "[" * 5000 + "]" * 5000
    add("deeply nested arrays", f'{{"DeletePackageJob": {deep}}}', "nested deeper than")
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
        "nested deeper than",
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
