import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from jobs_orchestration.changelog import (
    EVENT_TYPES,
    InvalidChangelogEvent,
    event_category,
    parse_event_timestamp,
    validate_event,
)
from jobs_orchestration_tests.support.changelog import SAMPLE_DETAILS

UTC_NOON = dt.datetime(2021, 6, 1, 12, 0, tzinfo=dt.UTC)


INT32_MAX = 2**31 - 1
INT32_MIN = -(2**31)
UUID = "0b8e2a6c-94c4-4a5e-9a51-1b8a0f2f0c11"

# The original's ChangelogEventName, in its order, with the category it gave each name.
ORIGINAL_EVENT_NAMES = [
    ("CREATE_DATASET", "DATASET"),
    ("UPDATE_METADATA", "DATASET"),
    ("UPDATE_NAME", "DATASET"),
    ("UPDATE_DESCRIPTION", "DATASET"),
    ("UPDATE_LICENSE", "DATASET"),
    ("ADD_TAG", "DATASET"),
    ("REMOVE_TAG", "DATASET"),
    ("UPDATE_README", "DATASET"),
    ("UPDATE_BANNER_IMAGE", "DATASET"),
    ("ADD_COLLECTION", "DATASET"),
    ("REMOVE_COLLECTION", "DATASET"),
    ("ADD_CONTRIBUTOR", "DATASET"),
    ("REMOVE_CONTRIBUTOR", "DATASET"),
    ("ADD_EXTERNAL_PUBLICATION", "DATASET"),
    ("REMOVE_EXTERNAL_PUBLICATION", "DATASET"),
    ("UPDATE_IGNORE_FILES", "DATASET"),
    ("UPDATE_STATUS", "DATASET"),
    ("UPDATE_PERMISSION", "PERMISSIONS"),
    ("UPDATE_OWNER", "PERMISSIONS"),
    ("CREATE_PACKAGE", "PACKAGES"),
    ("RENAME_PACKAGE", "PACKAGES"),
    ("MOVE_PACKAGE", "PACKAGES"),
    ("DELETE_PACKAGE", "PACKAGES"),
    ("RESTORE_PACKAGE", "PACKAGES"),
    ("CREATE_MODEL", "MODELS_AND_RECORDS"),
    ("UPDATE_MODEL", "MODELS_AND_RECORDS"),
    ("DELETE_MODEL", "MODELS_AND_RECORDS"),
    ("CREATE_MODEL_PROPERTY", "MODELS_AND_RECORDS"),
    ("UPDATE_MODEL_PROPERTY", "MODELS_AND_RECORDS"),
    ("DELETE_MODEL_PROPERTY", "MODELS_AND_RECORDS"),
    ("CREATE_RECORD", "MODELS_AND_RECORDS"),
    ("UPDATE_RECORD", "MODELS_AND_RECORDS"),
    ("DELETE_RECORD", "MODELS_AND_RECORDS"),
    ("CUSTOM_EVENT", "CUSTOM"),
    ("REQUEST_PUBLICATION", "PUBLISHING"),
    ("ACCEPT_PUBLICATION", "PUBLISHING"),
    ("REJECT_PUBLICATION", "PUBLISHING"),
    ("CANCEL_PUBLICATION", "PUBLISHING"),
    ("REQUEST_EMBARGO", "PUBLISHING"),
    ("ACCEPT_EMBARGO", "PUBLISHING"),
    ("REJECT_EMBARGO", "PUBLISHING"),
    ("CANCEL_EMBARGO", "PUBLISHING"),
    ("RELEASE_EMBARGO", "PUBLISHING"),
    ("REQUEST_REMOVAL", "PUBLISHING"),
    ("ACCEPT_REMOVAL", "PUBLISHING"),
    ("REJECT_REMOVAL", "PUBLISHING"),
    ("CANCEL_REMOVAL", "PUBLISHING"),
    ("REQUEST_REVISION", "PUBLISHING"),
    ("ACCEPT_REVISION", "PUBLISHING"),
    ("REJECT_REVISION", "PUBLISHING"),
    ("CANCEL_REVISION", "PUBLISHING"),
    ("UPDATE_CHANGELOG", "PUBLISHING"),
]

# messages.md: how the original turned its categories into the published `eventCategory`.
PUBLISHED_CATEGORY = {
    "DATASET": "METADATA",
    "PACKAGES": "FILES",
    "PUBLISHING": "PUBLISHING",
    "PERMISSIONS": "PERMISSIONS",
    "MODELS_AND_RECORDS": "RECORDS_AND_MODELS",
    "CUSTOM": "CUSTOM",
}


def test_the_catalogue_holds_exactly_the_originals_52_names():
    names = [name for name, _ in ORIGINAL_EVENT_NAMES]
    assert len(names) == len(set(names)) == 52
    assert len(EVENT_TYPES) == 52
    assert set(EVENT_TYPES) == set(names)


@pytest.mark.parametrize(("event_type", "original_category"), ORIGINAL_EVENT_NAMES)
def test_each_name_is_published_under_the_originals_category(event_type, original_category):
    assert event_category(event_type) == PUBLISHED_CATEGORY[original_category]


def test_a_name_outside_the_catalogue_is_published_as_unknown():
    assert event_category("SOMETHING_NEW") == "UNKNOWN"


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_every_event_type_accepts_its_documented_detail(event_type):
    assert validate_event(event_type, SAMPLE_DETAILS[event_type]) == SAMPLE_DETAILS[event_type]


MISSING = "is required"
NOT_AN_INT32 = f"must be a JSON integer from {INT32_MIN} to {INT32_MAX}"
NOT_A_STRING = "Input should be a valid string"
NOT_A_UUID = "must be a UUID"
NOT_AN_OBJECT = "must be a JSON object"

# event type -> bad details, each with the field the refusal must name and what it must say about it.
# Together they cover a wrong JSON type, a missing required field, an integer outside Int32 and a
# value outside one of the original's enumerations.
BAD_DETAILS: dict[str, list[tuple[Any, str, str]]] = {
    "CREATE_DATASET": [("not an object", "eventDetail", NOT_AN_OBJECT)],
    "UPDATE_METADATA": [(None, "eventDetail", NOT_AN_OBJECT)],
    "UPDATE_NAME": [
        ({"oldName": "a"}, "newName", MISSING),
        ({"oldName": "a", "newName": 3}, "newName", NOT_A_STRING),
    ],
    "UPDATE_DESCRIPTION": [({"newDescription": ["x"]}, "newDescription", NOT_A_STRING)],
    "UPDATE_LICENSE": [
        ({"newLicense": "CC-BY-4.0"}, "newLicense", "is not a License"),
        ({"oldLicense": "mit"}, "oldLicense", "is not a License"),
        # A hyphen where the original's name has an en dash.
        ({"newLicense": "Community Data License Agreement - Sharing"}, "newLicense", "is not a License"),
        ({"newLicense": 3}, "newLicense", "is not a License"),
    ],
    "ADD_TAG": [({}, "name", MISSING)],
    "REMOVE_TAG": [({"name": None}, "name", NOT_A_STRING)],
    "UPDATE_README": [({"oldReadme": 1}, "oldReadme", NOT_A_STRING)],
    "UPDATE_BANNER_IMAGE": [({"newBanner": {"url": "x"}}, "newBanner", NOT_A_STRING)],
    "ADD_COLLECTION": [
        ({"id": "3", "name": "Atlas"}, "id", NOT_AN_INT32),
        ({"id": INT32_MAX + 1, "name": "Atlas"}, "id", NOT_AN_INT32),
    ],
    "REMOVE_COLLECTION": [
        ({"id": 3}, "name", MISSING),
        ({"id": 1.5, "name": "Atlas"}, "id", NOT_AN_INT32),
    ],
    "ADD_CONTRIBUTOR": [
        ({"id": 9, "firstName": "Ada", "lastName": "L", "degree": "PhD"}, "degree", "is not a Degree"),
        ({"id": INT32_MAX + 1, "firstName": "Ada", "lastName": "L"}, "id", NOT_AN_INT32),
    ],
    "REMOVE_CONTRIBUTOR": [
        ({"id": 9, "firstName": "Ada"}, "lastName", MISSING),
        ({"id": 9, "firstName": "Ada", "lastName": "L", "degree": "MD"}, "degree", "is not a Degree"),
    ],
    "ADD_EXTERNAL_PUBLICATION": [
        # Cites was commented out of the original's RelationshipType.
        (
            {"doi": "10.1000/xyz", "relationshipType": "Cites"},
            "relationshipType",
            "is not a RelationshipType",
        ),
        ({"relationshipType": "IsCitedBy"}, "doi", MISSING),
    ],
    "REMOVE_EXTERNAL_PUBLICATION": [
        (
            {"doi": "10.1000/xyz", "relationshipType": "isCitedBy"},
            "relationshipType",
            "is not a RelationshipType",
        ),
        ({"doi": 10, "relationshipType": "IsCitedBy"}, "doi", NOT_A_STRING),
    ],
    "UPDATE_IGNORE_FILES": [
        ({"totalCount": True}, "totalCount", NOT_AN_INT32),
        ({"totalCount": INT32_MAX + 1}, "totalCount", NOT_AN_INT32),
        ({}, "totalCount", MISSING),
    ],
    "UPDATE_STATUS": [
        (
            {"oldStatus": {"id": 1, "name": "a", "displayName": "A"}, "newStatus": {}},
            "newStatus.id",
            MISSING,
        ),
        (
            {
                "oldStatus": {"id": INT32_MIN - 1, "name": "a", "displayName": "A"},
                "newStatus": {"id": 2, "name": "b", "displayName": "B"},
            },
            "oldStatus.id",
            NOT_AN_INT32,
        ),
    ],
    "UPDATE_PERMISSION": [
        ({"newRole": "Editor"}, "newRole", "is not a Role"),
        ({"oldRole": "admin"}, "oldRole", "is not a Role"),
        ({"userId": "N:user:1"}, "userId", NOT_AN_INT32),
        ({"teamId": INT32_MAX + 1}, "teamId", NOT_AN_INT32),
        ({"organizationId": 7.0}, "organizationId", NOT_AN_INT32),
    ],
    "UPDATE_OWNER": [
        ({"oldOwner": "N:user:1", "newOwner": 4}, "oldOwner", NOT_AN_INT32),
        ({"oldOwner": 3}, "newOwner", MISSING),
    ],
    "CREATE_PACKAGE": [
        ({"name": "scan.nii"}, "id", MISSING),
        ({"id": 42, "parent": {"name": "p"}}, "parent.id", MISSING),
    ],
    "RENAME_PACKAGE": [
        ({"id": 42, "newName": "b"}, "oldName", MISSING),
        ({"id": 2**40, "oldName": "a", "newName": "b"}, "id", NOT_AN_INT32),
    ],
    "MOVE_PACKAGE": [
        ({"id": 1, "newParent": {"name": "p"}}, "newParent.id", MISSING),
        ({"id": 1, "oldParent": {"id": "5"}}, "oldParent.id", NOT_AN_INT32),
    ],
    "DELETE_PACKAGE": [
        ({"id": "42"}, "id", NOT_AN_INT32),
        ({"id": 42, "parent": {"id": INT32_MAX + 1}}, "parent.id", NOT_AN_INT32),
    ],
    "RESTORE_PACKAGE": [
        ({"name": "scan.nii"}, "id", MISSING),
        ({"id": 42, "originalName": 5}, "originalName", NOT_A_STRING),
        ({"id": INT32_MAX + 1}, "id", NOT_AN_INT32),
        ({"id": 42, "parent": {"id": "x"}}, "parent.id", NOT_AN_INT32),
    ],
    "CREATE_MODEL": [
        ({"id": "not-a-uuid", "name": "m"}, "id", NOT_A_UUID),
        ({"id": UUID}, "name", MISSING),
    ],
    "UPDATE_MODEL": [({"id": 12345, "name": "m"}, "id", NOT_A_UUID)],
    "DELETE_MODEL": [({"id": UUID.replace("-", ""), "name": "m"}, "id", NOT_A_UUID)],
    "CREATE_MODEL_PROPERTY": [({"modelName": "m", "propertyName": "p"}, "modelId", MISSING)],
    "UPDATE_MODEL_PROPERTY": [
        ({"modelId": UUID, "modelName": "m", "propertyName": 3}, "propertyName", NOT_A_STRING)
    ],
    "DELETE_MODEL_PROPERTY": [
        ({"modelId": f"urn:uuid:{UUID}", "modelName": "m", "propertyName": "p"}, "modelId", NOT_A_UUID)
    ],
    "CREATE_RECORD": [
        ({"name": "r"}, "id", MISSING),
        ({"id": UUID, "modelId": "patient"}, "modelId", NOT_A_UUID),
    ],
    "UPDATE_RECORD": [
        ({"id": UUID, "properties": [{"name": "age", "newValue": 4}]}, "properties.0.oldValue", MISSING),
        (
            {"id": UUID, "properties": [{"name": 3, "oldValue": 1, "newValue": 2}]},
            "properties.0.name",
            NOT_A_STRING,
        ),
        ({"id": UUID, "properties": {"age": 4}}, "properties", "Input should be a valid list"),
    ],
    "DELETE_RECORD": [({"id": "r-1"}, "id", NOT_A_UUID)],
    "CUSTOM_EVENT": [
        ({"message": "m"}, "event_type", MISSING),
        ({"event_type": "X", "message": None}, "message", NOT_A_STRING),
    ],
    "REQUEST_PUBLICATION": [({}, "publicationStatusId", MISSING)],
    "ACCEPT_PUBLICATION": [({"publicationStatusId": "21"}, "publicationStatusId", NOT_AN_INT32)],
    "REJECT_PUBLICATION": [({"publicationStatusId": INT32_MAX + 1}, "publicationStatusId", NOT_AN_INT32)],
    "CANCEL_PUBLICATION": [({"publicationStatusId": 21.0}, "publicationStatusId", NOT_AN_INT32)],
    "REQUEST_EMBARGO": [({"publicationStatusId": True}, "publicationStatusId", NOT_AN_INT32)],
    "ACCEPT_EMBARGO": [({"publicationStatus": "accepted"}, "publicationStatusId", MISSING)],
    "REJECT_EMBARGO": [({"publicationStatusId": None}, "publicationStatusId", NOT_AN_INT32)],
    "CANCEL_EMBARGO": [({"publicationStatusId": INT32_MIN - 1}, "publicationStatusId", NOT_AN_INT32)],
    "RELEASE_EMBARGO": [({"publicationStatusId": [21]}, "publicationStatusId", NOT_AN_INT32)],
    "REQUEST_REMOVAL": [({}, "publicationStatusId", MISSING)],
    "ACCEPT_REMOVAL": [({"publicationStatusId": "N:status:21"}, "publicationStatusId", NOT_AN_INT32)],
    "REJECT_REMOVAL": [({"publicationStatusId": 2**63}, "publicationStatusId", NOT_AN_INT32)],
    "CANCEL_REMOVAL": [({"id": 21}, "publicationStatusId", MISSING)],
    "REQUEST_REVISION": [({"publicationStatusId": {"id": 21}}, "publicationStatusId", NOT_AN_INT32)],
    "ACCEPT_REVISION": [({}, "publicationStatusId", MISSING)],
    "REJECT_REVISION": [({"publicationStatusId": "21"}, "publicationStatusId", NOT_AN_INT32)],
    "CANCEL_REVISION": [({"publicationStatusId": INT32_MAX + 1}, "publicationStatusId", NOT_AN_INT32)],
    "UPDATE_CHANGELOG": [
        ({"newChangelog": 5}, "newChangelog", NOT_A_STRING),
        ({"oldChangelog": {"text": "x"}}, "oldChangelog", NOT_A_STRING),
    ],
}


def test_every_event_type_has_bad_details_to_refuse():
    assert set(BAD_DETAILS) == set(EVENT_TYPES)


@pytest.mark.parametrize(
    ("event_type", "detail", "field", "complaint"),
    [
        pytest.param(event_type, detail, field, complaint, id=f"{event_type}-{field}-{index}")
        for event_type, cases in BAD_DETAILS.items()
        for index, (detail, field, complaint) in enumerate(cases)
    ],
)
def test_a_bad_detail_is_refused_naming_the_field_and_the_value(event_type, detail, field, complaint):
    with pytest.raises(InvalidChangelogEvent) as refused:
        validate_event(event_type, detail)
    reason = str(refused.value)
    assert f"eventDetail of {event_type}" in reason
    if field == "eventDetail":
        assert complaint in reason and repr(detail) in reason
    elif complaint == MISSING:
        assert f"field {field!r} is required" in reason
    else:
        assert f"field {field!r} {complaint}" in reason
        value = detail
        for part in field.split("."):
            value = value[int(part)] if isinstance(value, list) else value[part]
        assert f"(got {value!r})" in reason


# The original's enumerations as it wrote them in JSON: entry names, exactly (kept as data, apart from
# the project's own lists, so that the test compares two independent copies).
ORIGINAL_ENUMERATIONS = json.loads((Path(__file__).parent / "original_enumerations.json").read_text())


def test_every_value_of_the_originals_enumerations_is_accepted():
    for license_name in ORIGINAL_ENUMERATIONS["licenses"]:
        assert validate_event("UPDATE_LICENSE", {"newLicense": license_name})["newLicense"] == license_name
    for degree in ORIGINAL_ENUMERATIONS["degrees"]:
        contributor = {"id": 1, "firstName": "A", "lastName": "B", "degree": degree}
        assert validate_event("ADD_CONTRIBUTOR", contributor)["degree"] == degree
    for relationship in ORIGINAL_ENUMERATIONS["relationship_types"]:
        publication = {"doi": "10.1000/xyz", "relationshipType": relationship}
        assert validate_event("ADD_EXTERNAL_PUBLICATION", publication) == publication
    for role in ORIGINAL_ENUMERATIONS["roles"]:
        assert validate_event("UPDATE_PERMISSION", {"oldRole": role, "newRole": role})["newRole"] == role


def test_the_int32_bounds_themselves_are_accepted():
    assert validate_event("UPDATE_OWNER", {"oldOwner": INT32_MIN, "newOwner": INT32_MAX}) == {
        "oldOwner": INT32_MIN,
        "newOwner": INT32_MAX,
    }


def test_optional_fields_may_be_absent_and_come_back_as_null():
    assert validate_event("UPDATE_DESCRIPTION", {"newDescription": "x"}) == {
        "oldDescription": None,
        "newDescription": "x",
    }
    assert validate_event("CREATE_PACKAGE", {"id": 1}) == {
        "id": 1,
        "nodeId": None,
        "name": None,
        "parent": None,
    }
    assert validate_event("RESTORE_PACKAGE", {"id": 1, "parent": {"id": 2}}) == {
        "id": 1,
        "nodeId": None,
        "name": None,
        "originalName": None,
        "parent": {"id": 2, "nodeId": None, "name": None},
    }
    assert validate_event("UPDATE_CHANGELOG", {}) == {"oldChangelog": None, "newChangelog": None}


def test_fields_outside_the_shape_are_dropped_and_uuids_made_canonical():
    detail = validate_event("CREATE_MODEL", {"id": UUID.upper(), "name": "m", "x": 1})
    assert detail == {"id": UUID, "name": "m"}
    assert validate_event("ACCEPT_PUBLICATION", {"publicationStatusId": 21, "status": "accepted"}) == {
        "publicationStatusId": 21
    }
    assert validate_event("DELETE_RECORD", {"id": UUID.upper(), "modelId": UUID.upper(), "values": {}}) == {
        "id": UUID,
        "name": None,
        "modelId": UUID,
    }


def test_a_record_propertys_json_values_are_kept_as_given():
    values = [None, 0, 1.5, "text", [1, {"nested": True}], {"unit": "mg", "value": [2]}]
    properties = [
        {"name": f"p{index}", "dataType": value, "oldValue": value, "newValue": value}
        for index, value in enumerate(values)
    ]
    detail = validate_event("UPDATE_RECORD", {"id": UUID, "properties": properties})
    assert detail["properties"] == properties
    only_values = validate_event(
        "UPDATE_RECORD", {"id": UUID, "properties": [{"name": "p", "oldValue": None, "newValue": 1}]}
    )
    assert only_values["properties"] == [{"name": "p", "dataType": None, "oldValue": None, "newValue": 1}]


def test_an_unknown_event_type_is_refused():
    with pytest.raises(InvalidChangelogEvent, match="eventType 'RENAME_UNIVERSE' is not a known"):
        validate_event("RENAME_UNIVERSE", {})


@pytest.mark.parametrize(
    "text",
    [
        "2021-06-01T12:00:00Z",
        "2021-06-01T12:00Z[UTC]",
        "2021-06-01T14:00+02:00[Europe/Paris]",
        "2021-06-01T14:00[Europe/Paris]",
        "2021-06-01T12:00:00.000+00:00",
    ],
)
def test_java_zoned_timestamps_are_read(text):
    parsed = parse_event_timestamp(text)
    assert parsed == UTC_NOON
    assert parsed.utcoffset() == dt.timedelta(0)


def test_a_missing_timestamp_means_now():
    now = dt.datetime(2024, 1, 2, 3, 4, tzinfo=dt.UTC)
    assert parse_event_timestamp(None, now=now) == now
    assert parse_event_timestamp("", now=now) == now


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("yesterday", "not an ISO 8601"),
        ("2021-06-01T12:00:00", "no UTC offset or time zone"),
        ("2021-06-01T12:00Z[Mars/Olympus]", "unknown time zone 'Mars/Olympus'"),
    ],
)
def test_a_bad_timestamp_is_refused_naming_the_value(text, reason):
    with pytest.raises(InvalidChangelogEvent, match="timestamp") as refused:
        parse_event_timestamp(text)
    assert reason in str(refused.value) and text in str(refused.value)
