"""Where a deletion sends the objects it finds: a pipeline that deletes them for real, or a tally that
only counts them (dry run). Both take objects one at a time from a keyset-paginated walk.

The pipeline gathers keys per bucket into DeleteObjects batches of 1,000 (the fewest calls there can
be), runs the batches in a bounded thread pool with a bounded number in flight (memory stays flat
whatever the dataset's size), and, once a batch's objects are gone, removes the rows that located them
in the same worker: objects always go before the rows that point at them.

When S3 or the database stops answering (the client's own short retries exhausted), the pipeline
stops: no further batch is sent, the batches in flight finish, and `drain()` raises
`ServiceUnreachable`. A large deletion therefore gives up within seconds of an outage instead of
spending the client's retries on each of its thousands of batches, and the op's retry policy (or a
re-run) carries on from the rows still present.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy.exc
from sqlalchemy import Connection
from sqlalchemy.engine import Engine

from jobs_orchestration import aws_s3
from jobs_orchestration.aws_s3 import DeleteOutcome
from jobs_orchestration.connectivity import ServiceUnreachable, is_unreachable
from jobs_orchestration.deletion import rows
from jobs_orchestration.deletion.rows import FILES, Forgotten, Owner
from jobs_orchestration.progress import ProgressMeter

ERROR_SAMPLE = 100
"""How many failed keys a report names; the rows still present are the complete record."""


class ObjectSink(Protocol):
    def add(self, bucket: str, key: str, owner: Owner, size: int = 0) -> None:
        """One object, located by the `owner` row."""

    def add_prefix(self, bucket: str, prefix: str, owner: Owner, size: int = 0) -> None:
        """Every object under a key prefix, located together by the `owner` row."""


@dataclass
class PipelineTotals:
    objects_deleted: int = 0
    forgotten: Forgotten = field(default_factory=Forgotten)
    error_count: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    permanent_errors: int = 0

    def record_errors(self, errors: dict[str, str]) -> None:
        for location, message in errors.items():
            self.error_count += 1
            if not aws_s3.is_transient_message(message):
                self.permanent_errors += 1
            if len(self.errors) < ERROR_SAMPLE:
                self.errors[location] = message


@dataclass
class _TaskResult:
    objects_deleted: int
    forgotten: Forgotten
    errors: dict[str, str]


class DeletionPipeline:
    """Deletes objects in DeleteObjects batches on a bounded pool; use as a context manager and call
    `drain()` before reading `totals`.

    `forget` removes rows once their objects are gone; it is a parameter so a fault can be injected
    between the two steps in tests.
    """

    def __init__(
        self,
        client: Any,
        engine: Engine,
        *,
        workers: int = 8,
        batch_size: int = aws_s3.S3_DELETE_BATCH,
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
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="s3-delete")
        # Bounds both memory (batches held) and the pressure put on S3 and the database.
        self._slots = threading.BoundedSemaphore(workers * 2)
        self._pending: dict[str, dict[str, list[Owner]]] = {}
        self._lock = threading.Lock()
        self._versioned: dict[str, bool] = {}
        self._in_flight: set[Future[_TaskResult]] = set()
        self._fatal: BaseException | None = None

    def __enter__(self) -> DeletionPipeline:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    # -- feeding --------------------------------------------------------------------------------

    def add(self, bucket: str, key: str, owner: Owner, size: int = 0) -> None:
        pending = self._pending.setdefault(bucket, {})
        pending.setdefault(key, []).append(owner)
        if len(pending) >= self.batch_size:
            self._submit(self._delete_batch, bucket, self._pending.pop(bucket))

    def add_prefix(self, bucket: str, prefix: str, owner: Owner, size: int = 0) -> None:
        self._submit(self._delete_prefix, bucket, prefix, owner)

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

    def _submit(self, task: Callable[..., _TaskResult], *args: Any) -> None:
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

    def _collect(self, future: Future[_TaskResult]) -> None:
        try:
            with self._lock:
                self._in_flight.discard(future)
                if future.cancelled():
                    return
                error = future.exception()
                if error is not None:
                    self._fatal = self._fatal or error
                    return
                result = future.result()
                self.totals.objects_deleted += result.objects_deleted
                self.totals.forgotten.add(result.forgotten)
                self.totals.record_errors(result.errors)
                if self.progress is not None:
                    self.progress.advance(result.forgotten.rows)
        finally:
            self._slots.release()

    def _raise_fatal(self) -> None:
        if self._fatal is not None:
            raise self._fatal

    # -- work done in the pool ------------------------------------------------------------------

    def _delete_batch(self, bucket: str, entries: dict[str, list[Owner]]) -> _TaskResult:
        outcome = aws_s3.delete_keys_retrying_transient(
            lambda keys: self._delete_keys(bucket, keys),
            list(entries),
            attempts=self.per_key_attempts,
            base_delay=self.retry_base_delay,
        )
        done = [owner for key in outcome.deleted for owner in entries[key]]
        errors = {f"s3://{bucket}/{key}": message for key, message in outcome.errors.items()}
        forgotten, forget_errors = self._forget(done)
        errors.update(forget_errors)
        return _TaskResult(len(outcome.deleted), forgotten, errors)

    def _delete_prefix(self, bucket: str, prefix: str, owner: Owner) -> _TaskResult:
        """Delete every object under a prefix a listing page at a time; the row goes only when the
        whole prefix is empty."""
        deleted = 0
        errors: dict[str, str] = {}
        try:
            for keys in self._keys_under(bucket, prefix):
                outcome = aws_s3.delete_keys_retrying_transient(
                    lambda batch: self._delete_keys(bucket, batch),
                    keys,
                    attempts=self.per_key_attempts,
                    base_delay=self.retry_base_delay,
                )
                deleted += len(outcome.deleted)
                errors.update({f"s3://{bucket}/{key}": message for key, message in outcome.errors.items()})
        except ServiceUnreachable:
            raise
        except Exception as error:  # a failed listing: the prefix stays, named by its row
            if is_unreachable(error):
                raise ServiceUnreachable(f"S3 ({bucket}): {aws_s3.call_error_message(error)}") from error
            errors[f"s3://{bucket}/{prefix}"] = aws_s3.call_error_message(error)
        if errors:
            return _TaskResult(deleted, Forgotten(), errors)
        forgotten, forget_errors = self._forget([owner])
        return _TaskResult(deleted, forgotten, forget_errors)

    def _keys_under(self, bucket: str, prefix: str):
        """Pages of at most one batch of keys under the prefix; in a bucket keeping versions, also the
        keys that only have old versions or delete markers left."""
        page: list[str] = []
        if self._keeps_versions(bucket):
            keys = (key for key, _version in aws_s3.iter_versions(self.client, bucket, prefix))
        else:
            keys = (key for key, _size in aws_s3.iter_keys_under(self.client, bucket, prefix))
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
        try:
            if self._keeps_versions(bucket):
                return aws_s3.delete_all_versions(self.client, bucket, keys)
            return aws_s3.delete_s3_keys(self.client, bucket, keys)
        except Exception as error:
            message = aws_s3.call_error_message(error)
            if is_unreachable(error):
                raise ServiceUnreachable(f"S3 ({bucket}): {message}") from error
            return DeleteOutcome(errors=dict.fromkeys(keys, message))

    def _keeps_versions(self, bucket: str) -> bool:
        if bucket not in self._versioned:
            self._versioned[bucket] = aws_s3.bucket_keeps_versions(self.client, bucket)
        return self._versioned[bucket]

    def _forget(self, owners: list[Owner]) -> tuple[Forgotten, dict[str, str]]:
        if not owners:
            return Forgotten(), {}
        try:
            with self.engine.begin() as connection:
                return (self.forget or rows.forget)(connection, owners), {}
        except sqlalchemy.exc.DBAPIError as error:
            # The objects are gone; the rows stay and a retry removes them (S3 reports a missing key
            # as deleted).
            if is_unreachable(error):
                raise ServiceUnreachable(f"database: {type(error).__name__}") from error
            raise


@dataclass
class DryRunTally:
    """Counts what a deletion would remove; deletes nothing. Prefixes are listed to count their objects."""

    client: Any
    sample_size: int = 20
    files: int = 0
    ranges: int = 0
    assets: int = 0
    objects: int = 0
    bytes: int = 0
    sample_keys: list[str] = field(default_factory=list)

    def add(self, bucket: str, key: str, owner: Owner, size: int = 0) -> None:
        self._count_owner(owner, size)
        self._count_object(bucket, key)

    def add_prefix(self, bucket: str, prefix: str, owner: Owner, size: int = 0) -> None:
        self._count_owner(owner, size)
        for key, _size in aws_s3.iter_keys_under(self.client, bucket, prefix):
            self._count_object(bucket, key)

    def _count_owner(self, owner: Owner, size: int) -> None:
        if owner.table == FILES:
            self.files += 1
            self.bytes += size
        elif owner.table == rows.RANGES:
            self.ranges += 1
        else:
            self.assets += 1

    def _count_object(self, bucket: str, key: str) -> None:
        self.objects += 1
        if len(self.sample_keys) < self.sample_size:
            self.sample_keys.append(f"s3://{bucket}/{key}")
