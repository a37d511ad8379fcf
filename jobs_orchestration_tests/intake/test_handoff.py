from __future__ import annotations

import random
import threading

from jobs_orchestration.intake.handoff import IntakeLimits, JobBatch, QueueIntake, ReceivedJob, _Cursor
from jobs_orchestration.intake.messages import parse_job_message
from jobs_orchestration_tests.support import job_messages as m
from jobs_orchestration_tests.support.queue import counts, send


def received(*bodies: str) -> list[ReceivedJob]:
    return [ReceivedJob(parse_job_message(b), f"m{i}", [f"r{i}"], b) for i, b in enumerate(bodies)]


def batching(batch_size: int = 10, changelog_batch_size: int | None = None) -> QueueIntake:
    limits = IntakeLimits(batch_size=batch_size, changelog_batch_size=changelog_batch_size or batch_size)
    return QueueIntake(None, "", "", limits)


def test_batches_group_by_type_and_deletions_by_organization() -> None:
    jobs = received(
        *[m.delete_package(i, 7) for i in range(1, 25 + 1)],
        *[m.delete_package(i, 8) for i in range(1, 3 + 1)],
        *[m.delete_dataset(i, 7) for i in range(1, 3 + 1)],
        *[m.changelog(i, organization_id=1 + i % 3) for i in range(1, 12 + 1)],
    )
    batches = batching().batches(jobs)
    shape = sorted(
        (b.type_name, {j.organization_key for j in b.jobs}.pop(), len(b.members))
        for b in batches
        if b.type_name != "DatasetChangelogEventJob"
    )
    assert shape == sorted(
        [("DeletePackageJob", "7", n) for n in (10, 10, 5)]
        + [("DeletePackageJob", "8", 3)]
        + [("DeleteDatasetJob", "7", 1)] * 3
    )
    changelog = [len(b.members) for b in batches if b.type_name == "DatasetChangelogEventJob"]
    assert changelog == [10, 2]  # one run may carry several organizations' events


def test_batch_size_one_gives_one_run_per_message() -> None:
    jobs = received(*[m.delete_package(i, 7) for i in range(1, 6)], m.changelog(), m.cache_population())
    assert [len(b.members) for b in batching(1).batches(jobs)] == [1] * 7


def test_changelog_messages_have_a_batch_size_of_their_own() -> None:
    jobs = received(*[m.changelog(i) for i in range(1, 26)], *[m.delete_package(i, 7) for i in range(1, 26)])
    sizes = sorted((b.type_name, len(b.members)) for b in batching(10, changelog_batch_size=20).batches(jobs))
    assert sizes == sorted(
        [("DatasetChangelogEventJob", 20), ("DatasetChangelogEventJob", 5)]
        + [("DeletePackageJob", n) for n in (10, 10, 5)]
    )


def test_storage_refreshes_of_one_organization_collapse_into_one_run() -> None:
    jobs = received(
        m.cache_population(7),
        m.cache_population(7),
        m.cache_population(7, dry_run=True),
        m.cache_population(None),
    )
    assert sorted(len(b.members) for b in batching().batches(jobs)) == [1, 1, 2]


def test_batch_run_key_depends_on_members_not_their_order() -> None:
    jobs = received(*[m.delete_package(i, 7, id=f"job-{i}") for i in range(1, 5)])
    shuffled = jobs[:]
    random.Random(3).shuffle(shuffled)
    assert JobBatch("DeletePackageJob", jobs).run_key == JobBatch("DeletePackageJob", shuffled).run_key
    assert JobBatch("DeletePackageJob", jobs).run_key != JobBatch("DeletePackageJob", jobs[:3]).run_key


def test_a_batch_that_cannot_be_routed_is_dead_lettered_and_others_still_route(local_aws) -> None:
    send(local_aws, m.delete_package(1, 7), m.changelog(2))

    def route(batch: JobBatch) -> str:
        if batch.type_name == "DeletePackageJob":
            raise LookupError("no deletion job in this code location")
        return batch.run_key

    intake = QueueIntake(local_aws.client("sqs"), local_aws.queue_url, local_aws.dead_letter_queue_url)
    result = intake.tick(None, run_exists=lambda key: False, route=route)
    assert len(result.requests) == 1
    (dead,) = result.dead_letters
    assert "cannot route DeletePackageJob: LookupError: no deletion job" in dead.reason
    assert counts(local_aws, local_aws.dead_letter_queue_url) == (1, 0)
    assert counts(local_aws, local_aws.queue_url) == (0, 1)


def test_a_failing_dead_letter_queue_leaves_the_message_on_the_main_queue(local_aws) -> None:
    send(local_aws, "not json", m.changelog(2))
    client = local_aws.client("sqs")

    def refuse(**kwargs):
        raise ConnectionError("dead-letter queue unreachable")

    client.send_message_batch = refuse
    intake = QueueIntake(client, local_aws.queue_url, local_aws.dead_letter_queue_url)
    result = intake.tick(None, run_exists=lambda key: False, route=lambda batch: batch)
    assert len(result.requests) == 1 and result.dead_letters == []
    assert any("dead-letter send failed" in error for error in result.errors)
    # Neither is deleted: the malformed one comes back (and SQS's redrive policy catches it in the end).
    assert counts(local_aws, local_aws.queue_url) == (0, 2)


def test_large_bad_messages_reach_the_dead_letter_queue_in_batches_sqs_accepts(local_aws) -> None:
    # Eight 200 KB bodies are 1.6 MB: more than one SendMessageBatch may carry.
    huge = [f"{index}" + "x" * 200_000 for index in range(8)]
    for body in huge:
        send(local_aws, body)
    intake = QueueIntake(local_aws.client("sqs"), local_aws.queue_url, local_aws.dead_letter_queue_url)
    result = intake.tick(None, run_exists=lambda key: False, route=lambda batch: batch)
    assert result.errors == []
    assert len(result.dead_letters) == 8
    assert counts(local_aws, local_aws.dead_letter_queue_url) == (8, 0)
    assert counts(local_aws, local_aws.queue_url) == (0, 0)


def test_a_tick_keeps_receiving_while_the_producer_is_still_sending(local_aws) -> None:
    send(local_aws, *[m.changelog(i) for i in range(1, 11)])
    # The first receive takes the ten queued; the late ten arrive while the next one long-polls.
    late = threading.Timer(0.5, send, args=(local_aws, *[m.changelog(i) for i in range(11, 21)]))
    late.start()
    # A long poll that outlasts the gap however slow the machine, and time bounds out of reach: only
    # an empty long poll can end this tick.
    limits = IntakeLimits(wait_time_seconds=5, max_seconds=120, tick_seconds=240)
    intake = QueueIntake(
        local_aws.client("sqs"), local_aws.queue_url, local_aws.dead_letter_queue_url, limits
    )
    result = intake.tick(None, run_exists=lambda key: False, route=lambda batch: batch)
    late.join()
    assert result.received == 20


def test_an_unreadable_cursor_starts_afresh() -> None:
    for cursor in ("garbage", '{"version": 99}', "[]", None):
        assert _Cursor.load(cursor).pending == {}


def test_a_hand_off_whose_run_never_appears_is_forgotten_after_a_while(local_aws) -> None:
    send(local_aws, m.delete_package(1, 7))
    intake = QueueIntake(
        local_aws.client("sqs"),
        local_aws.queue_url,
        local_aws.dead_letter_queue_url,
        IntakeLimits(pending_seconds=60),
    )
    first = intake.tick(
        None, run_exists=lambda key: False, route=lambda batch: batch.run_key, now=lambda: 1000.0
    )
    (run_key,) = first.requests
    soon = intake.tick(first.cursor, run_exists=lambda key: False, route=lambda b: b, now=lambda: 1030.0)
    assert run_key in _Cursor.load(soon.cursor).pending
    later = intake.tick(soon.cursor, run_exists=lambda key: False, route=lambda b: b, now=lambda: 1100.0)
    assert _Cursor.load(later.cursor).pending == {}
    # Never acknowledged: the message is still on the queue, to come back after its visibility timeout.
    assert counts(local_aws, local_aws.queue_url) == (0, 1)
