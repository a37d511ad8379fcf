import datetime as dt

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


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_every_event_type_accepts_its_documented_detail(event_type):
    assert validate_event(event_type, SAMPLE_DETAILS[event_type]) == SAMPLE_DETAILS[event_type]


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


def test_fields_outside_the_shape_are_dropped_and_uuids_made_canonical():
    detail = validate_event(
        "CREATE_MODEL", {"id": "0B8E2A6C-94C4-4A5E-9A51-1B8A0F2F0C11", "name": "m", "x": 1}
    )
    assert detail == {"id": "0b8e2a6c-94c4-4a5e-9a51-1b8a0f2f0c11", "name": "m"}


def test_object_details_are_kept_as_given():
    detail = {"anything": [1, {"nested": True}], "status": "requested"}
    assert validate_event("ACCEPT_PUBLICATION", detail) == detail
    assert validate_event("UPDATE_RECORD", detail) == detail


@pytest.mark.parametrize(
    ("event_type", "detail", "named"),
    [
        ("UPDATE_NAME", {"oldName": "a"}, "'newName' is required"),
        ("UPDATE_NAME", {"oldName": "a", "newName": 3}, "'newName'"),
        ("ADD_COLLECTION", {"id": "3", "name": "x"}, "'id'"),
        (
            "UPDATE_STATUS",
            {"oldStatus": {"id": 1, "name": "a", "displayName": "A"}, "newStatus": {}},
            "'newStatus.id'",
        ),
        ("MOVE_PACKAGE", {"id": 1, "newParent": {"name": "p"}}, "'newParent.id' is required"),
        ("DELETE_MODEL", {"id": "not-a-uuid", "name": "m"}, "'id' must be a UUID (got 'not-a-uuid')"),
        ("UPDATE_IGNORE_FILES", {"totalCount": True}, "'totalCount'"),
        ("CUSTOM_EVENT", {"message": "m"}, "'event_type' is required"),
        ("CREATE_RECORD", ["not", "an", "object"], "must be a JSON object"),
        ("CREATE_DATASET", None, "must be a JSON object"),
    ],
)
def test_a_detail_of_the_wrong_shape_is_refused_naming_the_field(event_type, detail, named):
    with pytest.raises(InvalidChangelogEvent, match=event_type) as refused:
        validate_event(event_type, detail)
    assert named in str(refused.value)


def test_an_unknown_event_type_is_refused():
    with pytest.raises(InvalidChangelogEvent, match="eventType 'RENAME_UNIVERSE' is not a known"):
        validate_event("RENAME_UNIVERSE", {})


def test_categories_follow_the_original_mapping():
    assert event_category("UPDATE_NAME") == "METADATA"
    assert event_category("MOVE_PACKAGE") == "FILES"
    assert event_category("RELEASE_EMBARGO") == "PUBLISHING"
    assert event_category("REQUEST_REVISION") == "PUBLISHING"
    assert event_category("UPDATE_OWNER") == "PERMISSIONS"
    assert event_category("CREATE_RECORD") == "RECORDS_AND_MODELS"
    assert event_category("CUSTOM_EVENT") == "CUSTOM"
    assert event_category("SOMETHING_NEW") == "UNKNOWN"


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
