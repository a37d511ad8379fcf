from __future__ import annotations

import json

import pytest

from jobs_orchestration.intake.messages import (
    CachePopulationJob,
    DatasetChangelogEventJob,
    DeleteDatasetJob,
    DeletePackageJob,
    MessageRejected,
    parse_job_message,
)
from jobs_orchestration_tests.support import job_messages as m
from jobs_orchestration_tests.support.changelog import SAMPLE_DETAILS

UPDATE_NAME_EVENT = m.UPDATE_NAME

# The shapes of design/messages.md, verbatim.
DOC_SHAPES = [
    '{"DeletePackageJob": {"packageId": 42, "organizationId": 7, "userId": "N:user:3c1f", '
    '"traceId": "2c6f-1", "id": "8d0e5c1a-0000"}}',
    '{"DeleteDatasetJob": {"datasetId": 13, "organizationId": 7, "userId": "N:user:3c1f", "traceId": "t", "id": "x"}}',
    '{"CachePopulationJob": {"dryRun": false, "organizationId": 7, "id": "x", "deleteRedisData": null}}',
    '{"DatasetChangelogEventJob": {"organizationId": 7, "datasetId": 13, "userId": "N:user:1", "traceId": "t", '
    '"events": [{"eventType": "UPDATE_NAME", "eventDetail": {"oldName": "a", "newName": "b"}, '
    '"timestamp": "2021-06-01T12:00:00Z"}], "id": "x"}}',
]


@pytest.mark.parametrize("body", DOC_SHAPES)
def test_every_documented_shape_parses(body: str) -> None:
    job = parse_job_message(body)
    (type_name,) = json.loads(body)
    assert job.type_name == type_name
    assert job.id == json.loads(body)[type_name]["id"]


def test_fields_map_from_camel_case_and_unknown_fields_are_kept() -> None:
    job = parse_job_message(m.delete_package(42, 7, id="job-1", traceId="tr", futureField={"a": 1}))
    assert isinstance(job, DeletePackageJob)
    assert (job.package_id, job.organization_id, job.user_id, job.trace_id) == (42, 7, "N:user:3c1f", "tr")
    assert job.unknown_fields == {"futureField": {"a": 1}}


def test_dataset_deletion() -> None:
    job = parse_job_message(m.delete_dataset(13, 9))
    assert isinstance(job, DeleteDatasetJob)
    assert (job.dataset_id, job.organization_id) == (13, 9)


@pytest.mark.parametrize(
    "body", [m.cache_population(None), m.body("CachePopulationJob", dryRun=True, id="x")]
)
def test_cache_population_without_organization_means_all(body: str) -> None:
    job = parse_job_message(body)
    assert isinstance(job, CachePopulationJob)
    assert job.organization_id is None
    assert "org=all" in job.idempotency_key


@pytest.mark.parametrize(
    "timestamp", ["2021-06-01T12:00:00Z", "2021-06-01T12:00Z[UTC]", "2021-06-01T14:00+02:00[Europe/Paris]"]
)
def test_changelog_single_event_form_and_java_timestamps(timestamp: str) -> None:
    job = parse_job_message(m.changelog(13, 7, **m.UPDATE_NAME, timestamp=timestamp))
    assert isinstance(job, DatasetChangelogEventJob)
    assert [(e.event_type, e.event_detail, e.timestamp) for e in job.events] == [
        ("UPDATE_NAME", {"oldName": "a", "newName": "b"}, timestamp)
    ]


def test_changelog_list_form_and_no_events() -> None:
    listed = parse_job_message(
        m.changelog(events=[m.UPDATE_NAME, {"eventType": "CREATE_DATASET", "eventDetail": {}}])
    )
    assert [e.event_type for e in listed.events] == ["UPDATE_NAME", "CREATE_DATASET"]
    assert parse_job_message(m.changelog()).events == []


def test_every_event_type_of_the_original_passes_intake() -> None:
    """A producer may send any of the 52 names, RESTORE_PACKAGE and UPDATE_CHANGELOG included."""
    events = [{"eventType": name, "eventDetail": detail} for name, detail in SAMPLE_DETAILS.items()]
    job = parse_job_message(m.changelog(events=events))
    assert [event.event_type for event in job.events] == list(SAMPLE_DETAILS)
    assert {"RESTORE_PACKAGE", "UPDATE_CHANGELOG"} <= set(SAMPLE_DETAILS)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "exactly one key"),
        ('{"DeletePackageJob": {}, "DeleteDatasetJob": {}}', "exactly one key"),
        ('{"PurgeEverythingJob": {"id": "x"}}', "unknown job type 'PurgeEverythingJob'"),
        ('{"DeletePackageJob": 5}', "must be a JSON object"),
        (
            m.body("DeletePackageJob", packageId=1, organizationId=7, userId="u", traceId="t"),
            "field id is missing",
        ),
        (
            m.delete_package(organization_id="seven"),
            'field organizationId: Input should be a valid integer (value "seven")',
        ),
        (m.cache_population(dry_run="no"), 'field dryRun: Input should be a valid boolean (value "no")'),
        (m.changelog(eventType="UPDATE_NAME"), "eventDetail is missing"),
        (m.changelog(events=[{"eventType": "ADD_TAG", "eventDetail": []}]), "field events.0.eventDetail"),
    ],
)
def test_bad_messages_are_rejected_naming_field_and_value(body: str, expected: str) -> None:
    with pytest.raises(MessageRejected) as rejected:
        parse_job_message(body)
    assert expected in rejected.value.reason


def test_idempotency_key_is_business_content_plus_producer_id() -> None:
    first = parse_job_message(m.delete_package(42, 7, id="job-1"))
    again = parse_job_message(m.delete_package(42, 7, id="job-1", traceId="other trace"))
    new_request = parse_job_message(m.delete_package(42, 7, id="job-2"))
    assert first.idempotency_key == again.idempotency_key == "DeletePackageJob:org=7:package=42:id=job-1"
    assert new_request.idempotency_key != first.idempotency_key


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"eventType": "MAKE_COFFEE", "eventDetail": {}}, "eventType 'MAKE_COFFEE' is not a known"),
        ({"eventType": "UPDATE_NAME", "eventDetail": {"oldName": "a"}}, "field 'newName' is required"),
        (
            {
                "eventType": "ADD_CONTRIBUTOR",
                "eventDetail": {"id": 9, "firstName": "A", "lastName": "B", "degree": "PhD"},
            },
            "field 'degree' is not a Degree",
        ),
        ({**UPDATE_NAME_EVENT, "timestamp": "yesterday"}, "timestamp 'yesterday' is not an ISO 8601"),
        ({**UPDATE_NAME_EVENT, "timestamp": "2021-06-01T12:00"}, "has no UTC offset"),
    ],
)
def test_changelog_events_are_checked_by_the_changelog_catalogue(event: dict, expected: str) -> None:
    """What the changelog domain refuses is rejected at intake with its reason, so it reaches the
    dead-letter queue instead of a failing run."""
    with pytest.raises(MessageRejected) as rejected:
        parse_job_message(m.changelog(events=[m.UPDATE_NAME, event]))
    assert "events[1]" in rejected.value.reason
    assert expected in rejected.value.reason
