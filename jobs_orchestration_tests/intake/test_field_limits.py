"""Every field of every message type holds at most what the column it lands in holds: at the limit it
is accepted, one past it the message is rejected with a reason naming the field and the limit; and such
a message is dead-lettered in the tick that received it while the batch beside it becomes a run."""

from __future__ import annotations

import json

import pytest

from jobs_orchestration.changelog.publish import detail_bytes
from jobs_orchestration.intake.job_types import FieldLimit
from jobs_orchestration.intake.messages import (
    JOB_TYPES,
    LARGEST_DETAIL_BYTES,
    SQS_MAX_BODY_BYTES,
    MessageRejected,
    parse_job_message,
)
from jobs_orchestration_tests.support import job_messages as m
from jobs_orchestration_tests.support.queue import counts, dead_letters, send

VALID = {
    "DeletePackageJob": m.delete_package(42, 7),
    "DeleteDatasetJob": m.delete_dataset(13, 7),
    "CachePopulationJob": m.cache_population(7),
    "DatasetChangelogEventJob": m.changelog(13, 7, events=[m.UPDATE_NAME]),
}
LIMITS = [
    (type_name, limit) for type_name, job_type in JOB_TYPES.items() for limit in job_type.model.field_limits()
]


def test_every_message_type_has_a_valid_example_and_bounded_fields():
    assert set(VALID) == set(JOB_TYPES)
    for type_name, job_type in JOB_TYPES.items():
        assert {limit.field for limit in job_type.model.field_limits()} >= {"id"}, type_name


def _with(type_name: str, field: str, value) -> str:
    document = json.loads(VALID[type_name])
    document[type_name][field] = value
    return json.dumps(document)


def _at(limit: FieldLimit, past: int) -> str | int:
    if limit.max_length is not None:
        return "x" * (limit.max_length + past)
    return limit.max_value + past


@pytest.mark.parametrize(("type_name", "limit"), LIMITS, ids=[f"{t}.{lim.field}" for t, lim in LIMITS])
def test_a_field_at_its_limit_is_accepted_and_one_past_it_is_rejected_naming_both(type_name, limit):
    parse_job_message(_with(type_name, limit.field, _at(limit, 0)))

    with pytest.raises(MessageRejected) as rejected:
        parse_job_message(_with(type_name, limit.field, _at(limit, 1)))
    bound = limit.max_length if limit.max_length is not None else limit.max_value
    assert rejected.value.reason.startswith(f"{type_name}: field {limit.field} is ")
    assert f"{limit.where} holds at most {bound}" in rejected.value.reason


def _detail_of(size: int) -> dict:
    """An UPDATE_README detail taking exactly `size` bytes as published."""
    detail = {"oldReadme": "", "newReadme": ""}
    detail["newReadme"] = "r" * (size - detail_bytes(detail))
    assert detail_bytes(detail) == size
    return detail


def test_a_changelog_detail_fits_an_sns_message_or_is_rejected():
    def message(size: int) -> str:
        event = {"eventType": "UPDATE_README", "eventDetail": _detail_of(size)}
        return m.changelog(13, 7, events=[event])

    assert len(message(LARGEST_DETAIL_BYTES).encode()) <= SQS_MAX_BODY_BYTES
    parse_job_message(message(LARGEST_DETAIL_BYTES))
    with pytest.raises(MessageRejected, match=f"leaves room for at most {LARGEST_DETAIL_BYTES}"):
        parse_job_message(message(LARGEST_DETAIL_BYTES + 1))


def test_a_body_larger_than_sqs_takes_is_rejected():
    body = m.changelog(13, 7, events=[m.UPDATE_NAME], traceId="t", padding="p" * SQS_MAX_BODY_BYTES)
    with pytest.raises(MessageRejected, match=f"an SQS message holds at most {SQS_MAX_BODY_BYTES}"):
        parse_job_message(body)


def test_over_limit_members_are_dead_lettered_in_their_tick_and_the_rest_become_runs(local_aws, tick):
    over_limit = {
        "string": m.delete_package(42, 7, traceId="t" * 256),
        "integer": m.delete_dataset(2**31, 7),
        "detail": m.changelog(
            13,
            7,
            events=[{"eventType": "UPDATE_README", "eventDetail": _detail_of(LARGEST_DETAIL_BYTES + 1)}],
        ),
    }
    valid = [m.delete_package(43, 7, id="ok-1"), m.changelog(13, 7, id="ok-2", events=[m.UPDATE_NAME])]
    send(local_aws, *valid, *over_limit.values())

    result = tick()

    assert sorted(request.job_name for request in result.run_requests) == [
        "dataset_changelog_job",
        "delete_package_job",
    ]
    reasons = {letter["body"]: letter["reason"] for letter in dead_letters(local_aws)}
    assert set(reasons) == set(over_limit.values())
    assert "field traceId is 256 characters long" in reasons[over_limit["string"]]
    assert "field datasetId is 2147483648" in reasons[over_limit["integer"]]
    assert "eventDetail takes" in reasons[over_limit["detail"]]
    # Nothing of them is left on the job queue, in flight or visible.
    queued, _in_flight = counts(local_aws, local_aws.queue_url)
    assert queued == 0
