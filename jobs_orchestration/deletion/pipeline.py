"""Where a deletion sends the objects it finds: a pipeline that deletes them for real, or a tally that
only counts them (dry run). Both take objects one at a time from a keyset-paginated walk.

The pipeline gathers keys per bucket into DeleteObjects batches of 1,000 (the fewest calls there can
be), runs the batches in a bounded thread pool with a bounded number in flight (memory stays flat
whatever the dataset's size), and, once a batch's objects are gone, removes the rows that located them
in the same worker: objects always go before the rows that point at them.

Several requests may share one pipeline (the package deletions of one run): each object is fed with
the request it belongs to, and the pipeline keeps totals per request beside the overall ones: what
each request deleted and forgot, and the errors met on its own objects and rows. A batch's rows are
removed in one transaction; a row the database refuses for good is put down to its own request (the
batch's requests are then forgotten one transaction each), so it does not fail the others.

When S3 or the database stops answering (the client's own short retries exhausted), the pipeline
stops: no further batch is sent, the batches in flight finish, and `drain()` raises
`ServiceUnreachable`. A large deletion therefore gives up within seconds of an outage instead of
spending the client's retries on each of its thousands of batches, and the op's retry policy (or a
re-run) carries on from the rows still present.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy.exc
from sqlalchemy import Connection
from sqlalchemy.engine import Engine

from jobs_orchestration.aws import s3
from jobs_orchestration.aws.batching import S3_DELETE_OBJECTS
from jobs_orchestration.aws.s3 import DeleteOutcome
from jobs_orchestration.connectivity import ServiceUnreachable, is_unreachable
from jobs_orchestration.deletion import rows
from jobs_orchestration.deletion.report import DryRunSummary
from jobs_orchestration.deletion.rows import FILES, Forgotten, Owner
from jobs_orchestration.failures import Failure, is_transient
from jobs_orchestration.progress import ProgressMeter

ERROR_SAMPLE = 100
"""How many failed keys a report names; the rows still present are the complete record."""


class ObjectSink(Protocol):
    def add(self, bucket: str, key: str, owner: Owner, size: int = 0, request: Hashable = None) -> None:
        """One object, located by the `owner` row, deleted for `request`."""

    def add_prefix(
        self, bucket: str, prefix: str, owner: Owner, size: int = 0, request: Hashable = None
    ) -> None:
        """Every object under a key prefix, located together by the `owner` row."""


@dataclass
class PipelineTotals:
    objects_deleted: int = 0
    forgotten: Forgotten = field(default_factory=Forgotten)
    error_count: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    """A sample of the failures, by location."""
    permanent_errors: int = 0

    def record_errors(self, errors: dict[str, Failure]) -> None:
        for location, failure in errors.items():
            self.error_count += 1
            if not failure.transient:
                self.permanent_errors += 1
            if len(self.errors) < ERROR_SAMPLE:
                self.errors[location] = str(failure)

    def add(self, result: _TaskResult) -> None:
        self.objects_deleted += result.objects_deleted
        self.forgotten.add(result.forgotten)
        self.record_errors(result.errors)


@dataclass
class _TaskResult:
    """What a task did for one request."""

    objects_deleted: int = 0
    forgotten: Forgotten = field(default_factory=Forgotten)
    errors: dict[str, Failure] = field(default_factory=dict)


@dataclass
class _BatchResult:
    """What a task did: objects deleted (a key two requests share counts once) and each request's part."""

    objects_deleted: int
    by_request: dict[Hashable, _TaskResult]


_Entries = dict[str, list[tuple[Owner, Hashable]]]
"""Keys of a batch, each with the rows that locate it and the request each row belongs to."""


class DeletionPipeline:
    """Deletes objects in DeleteObjects batches on a bounded pool; use as a context manager and call
    `drain()` before reading `totals` (all requests) or `totals_for(request)`.

    `forget` removes rows once their objects are gone; it is a parameter so a fault can be injected
    between the two steps in tests.
    """

    def __init__(
        self,
        client: Any,
        engine: Engine,
        *,
        workers: int = 8,
        batch_size: int = S3_DELETE_OBJECTS.entries,
        forget: Callable[[Connection, Sequence[Owner]], Forgotten] | None = None,
        per_key_attempts: int = 3,
        retry_base_delay: float = 0.2,
        progress: ProgressMeter | None = None,
    ) -> None:
        self.client = client
        self.engine = engine
        self.batch_size = batch_size
        self.forget = forget
        self.per_key_attempts = per_key_attempts
        self.retry_base_delay = retry_base_delay
        self.totals = PipelineTotals()
        self.progress = progress
        self._totals_by_request: dict[Hashable, PipelineTotals] = {}
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="s3-delete")
        # Bounds both memory (batches held) and the pressure put on S3 and the database.
        self._slots = threading.BoundedSemaphore(workers * 2)
        self._pending: dict[str, _Entries] = {}
        self._lock = threading.Lock()
        self._versioned: dict[str, bool] = {}
        self._in_flight: set[Future[_BatchResult]] = set()
        self._fatal: BaseException | None = None

    def __enter__(self) -> DeletionPipeline:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    # -- feeding --------------------------------------------------------------------------------

    def add(self, bucket: str, key: str, owner: Owner, size: int = 0, request: Hashable = None) -> None:
        pending = self._pending.setdefault(bucket, {})
        pending.setdefault(key, []).append((owner, request))
        if len(pending) >= self.batch_size:
            self._submit(self._delete_batch, bucket, self._pending.pop(bucket))

    def add_prefix(
        self, bucket: str, prefix: str, owner: Owner, size: int = 0, request: Hashable = None
    ) -> None:
        self._submit(self._delete_prefix, bucket, prefix, owner, request)

    def totals_for(self, request: Hashable) -> PipelineTotals:
        """What the pipeline did for one request (read after `drain()`)."""
        return self._totals_by_request.get(request) or PipelineTotals()

    def drain(self) -> PipelineTotals:
        """Send the last partial batches and wait for every task; re-raises a fatal task error."""
        for bucket in list(self._pending):
            self._submit(self._delete_batch, bucket, self._pending.pop(bucket))
        while True:
            with self._lock:
                waiting = list(self._in_flight)
            if not waiting:
                break
            # Woken at least once a second to report progress from this (the driving) thread.
            wait(waiting, timeout=1.0, return_when=FIRST_COMPLETED)
            self._poll_progress()
        self._raise_fatal()
        return self.totals

    def _submit(self, task: Callable[..., _BatchResult], *args: Any) -> None:
        self._raise_fatal()
        self._poll_progress()
        self._slots.acquire()
        future = self._pool.submit(task, *args)
        with self._lock:
            self._in_flight.add(future)
        future.add_done_callback(self._collect)

    def _poll_progress(self) -> None:
        if self.progress is not None:
            self.progress.poll()

    def _collect(self, future: Future[_BatchResult]) -> None:
        try:
            with self._lock:
                self._in_flight.discard(future)
                if future.cancelled():
                    return
                error = future.exception()
                if error is not None:
                    self._fatal = self._fatal or error
                    return
                batch = future.result()
                self.totals.objects_deleted += batch.objects_deleted
                errors: dict[str, Failure] = {}
                for request, result in batch.by_request.items():
                    self.totals.forgotten.add(result.forgotten)
                    errors.update(result.errors)
                    self._totals_by_request.setdefault(request, PipelineTotals()).add(result)
                    if self.progress is not None:
                        self.progress.advance(result.forgotten.rows)
                self.totals.record_errors(errors)
        finally:
            self._slots.release()

    def _raise_fatal(self) -> None:
        if self._fatal is not None:
            raise self._fatal

    # -- work done in the pool ------------------------------------------------------------------

    def _delete_batch(self, bucket: str, entries: _Entries) -> _BatchResult:
        outcome = self._delete_keys(bucket, list(entries))
        results: dict[Hashable, _TaskResult] = {}
        done: dict[Hashable, list[Owner]] = {}
        for key in outcome.deleted:
            for request in {request for _owner, request in entries[key]}:
                results.setdefault(request, _TaskResult()).objects_deleted += 1
            for owner, request in entries[key]:
                done.setdefault(request, []).append(owner)
        for key, message in outcome.errors.items():
            for request in {request for _owner, request in entries[key]}:
                results.setdefault(request, _TaskResult()).errors[f"s3://{bucket}/{key}"] = message
        for request, (forgotten, forget_errors) in self._forget(done).items():
            result = results.setdefault(request, _TaskResult())
            result.forgotten = forgotten
            result.errors.update(forget_errors)
        return _BatchResult(len(outcome.deleted), results)

    def _delete_prefix(self, bucket: str, prefix: str, owner: Owner, request: Hashable) -> _BatchResult:
        """Delete every object under a prefix a listing page at a time; the row goes only when the
        whole prefix is empty."""
        deleted = 0
        errors: dict[str, Failure] = {}
        try:
            for keys in self._keys_under(bucket, prefix):
                outcome = self._delete_keys(bucket, keys)
                deleted += len(outcome.deleted)
                errors.update({f"s3://{bucket}/{key}": failure for key, failure in outcome.errors.items()})
        except ServiceUnreachable:
            raise
        except Exception as error:  # a failed listing: the prefix stays, named by its row
            if is_unreachable(error):
                raise ServiceUnreachable(f"S3 ({bucket}): {Failure.of(error)}") from error
            errors[f"s3://{bucket}/{prefix}"] = Failure.of(error)
        if errors:
            return _BatchResult(deleted, {request: _TaskResult(deleted, Forgotten(), errors)})
        forgotten, forget_errors = self._forget({request: [owner]})[request]
        return _BatchResult(deleted, {request: _TaskResult(deleted, forgotten, forget_errors)})

    def _keys_under(self, bucket: str, prefix: str):
        """Pages of at most one batch of keys under the prefix; in a bucket keeping versions, also the
        keys that only have old versions or delete markers left."""
        page: list[str] = []
        if self._keeps_versions(bucket):
            keys = (key for key, _version in s3.iter_versions(self.client, bucket, prefix))
        else:
            keys = (key for key, _size in s3.iter_keys_under(self.client, bucket, prefix))
        for key in keys:
            if page and page[-1] == key:  # versions of one key are listed together
                continue
            page.append(key)
            if len(page) == self.batch_size:
                yield page
                page = []
        if page:
            yield page

    def _delete_keys(self, bucket: str, keys: list[str]) -> DeleteOutcome:
        """The keys deleted (every version, where the bucket keeps them), keys that failed transiently
        sent again; a call that failed as a whole (a refused listing of versions, say) fails its keys."""
        try:
            return s3.delete_keys(
                self.client,
                bucket,
                keys,
                all_versions=self._keeps_versions(bucket),
                attempts=self.per_key_attempts,
                retry_delay_seconds=self.retry_base_delay,
            )
        except ServiceUnreachable:
            raise
        except Exception as error:
            if is_unreachable(error):
                raise ServiceUnreachable(f"S3 ({bucket}): {Failure.of(error)}") from error
            return DeleteOutcome(errors=dict.fromkeys(keys, Failure.of(error)))

    def _keeps_versions(self, bucket: str) -> bool:
        if bucket not in self._versioned:
            self._versioned[bucket] = s3.bucket_keeps_versions(self.client, bucket)
        return self._versioned[bucket]

    def _forget(
        self, owners_by_request: dict[Hashable, list[Owner]]
    ) -> dict[Hashable, tuple[Forgotten, dict[str, Failure]]]:
        """Remove the rows of a batch's deleted objects, each request's counted apart, in one
        transaction. When requests share the pipeline and the database refuses that for good, each
        request's rows are removed in a transaction of their own, so the refusal stays with the request
        whose rows caused it; an error a retry may get past stops the pipeline, as with one request."""
        owners_by_request = {request: owners for request, owners in owners_by_request.items() if owners}
        if not owners_by_request:
            return {}
        try:
            with self.engine.begin() as connection:
                return {
                    request: (self._forget_rows(connection, owners), {})
                    for request, owners in owners_by_request.items()
                }
        except sqlalchemy.exc.DBAPIError as error:
            self._raise_unless_its_own(error, owners_by_request)
        results: dict[Hashable, tuple[Forgotten, dict[str, Failure]]] = {}
        for request, owners in owners_by_request.items():
            try:
                with self.engine.begin() as connection:
                    results[request] = (self._forget_rows(connection, owners), {})
            except sqlalchemy.exc.DBAPIError as error:
                self._raise_unless_its_own(error, owners_by_request)
                # Its objects are gone and its rows stay, saying what is left; the request fails.
                errors = {f"{owner.table}/{owner.id}": Failure.of(error) for owner in owners}
                results[request] = (Forgotten(), errors)
        return results

    def _forget_rows(self, connection: Connection, owners: Sequence[Owner]) -> Forgotten:
        return (self.forget or rows.forget)(connection, owners)

    @staticmethod
    def _raise_unless_its_own(
        error: sqlalchemy.exc.DBAPIError, owners_by_request: dict[Hashable, list[Owner]]
    ) -> None:
        """Re-raise a database error that is not one request's own: an outage (the objects are gone,
        the rows stay, and a retry removes them: S3 reports a missing key as deleted), an error a retry
        may get past, or any error of a pipeline that serves no requests apart."""
        if is_unreachable(error):
            raise ServiceUnreachable(f"database: {type(error).__name__}") from error
        if is_transient(error) or list(owners_by_request) == [None]:
            raise error


@dataclass
class DryRunTally:
    """Counts what a deletion would remove into `summary`; deletes nothing. Prefixes are listed to count
    their objects."""

    client: Any
    sample_size: int = 20
    summary: DryRunSummary = field(default_factory=DryRunSummary)

    def add(self, bucket: str, key: str, owner: Owner, size: int = 0, request: Hashable = None) -> None:
        self._count_owner(owner, size)
        self._count_object(bucket, key)

    def add_prefix(
        self, bucket: str, prefix: str, owner: Owner, size: int = 0, request: Hashable = None
    ) -> None:
        self._count_owner(owner, size)
        for key, _size in s3.iter_keys_under(self.client, bucket, prefix):
            self._count_object(bucket, key)

    def _count_owner(self, owner: Owner, size: int) -> None:
        if owner.table == FILES:
            self.summary.files += 1
            self.summary.bytes += size
        elif owner.table == rows.RANGES:
            self.summary.ranges += 1
        else:
            self.summary.assets += 1

    def _count_object(self, bucket: str, key: str) -> None:
        self.summary.objects += 1
        if len(self.summary.sample_keys) < self.sample_size:
            self.summary.sample_keys.append(f"s3://{bucket}/{key}")
