"""Bulk S3 deletion shared by every job that removes objects: DeleteObjects 1,000 keys a call, per-key
errors read from each response, every version removed where a bucket keeps versions."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from jobs_orchestration.failures import is_transient_code

S3_DELETE_BATCH = 1000
"""The most keys one S3 DeleteObjects call takes."""


@dataclass
class DeleteOutcome:
    """What a bulk delete did: keys now gone (already missing counts as gone) and keys that failed."""

    deleted: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    def merge(self, other: DeleteOutcome) -> None:
        self.deleted.extend(other.deleted)
        self.errors.update(other.errors)


def error_code(message: str) -> str:
    """The S3 error code at the front of an error recorded as 'Code: Message'."""
    return message.split(":", 1)[0].strip()


def is_transient_message(message: str) -> bool:
    return is_transient_code(error_code(message))


def call_error_message(error: Exception) -> str:
    """A failed S3 call as 'Code: Message', the form per-key errors take, so both classify alike."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(error, ClientError):
        return f"{error.response.get('Error', {}).get('Code', 'ClientError')}: {error}"
    if isinstance(error, (ConnectionError, HTTPClientError)):
        return f"ConnectionError: {error}"
    return f"{type(error).__name__}: {error}"


def delete_s3_keys(
    client: Any,
    bucket: str,
    keys: Iterable[str],
    *,
    rename: Callable[[str], str] = lambda key: key,
) -> DeleteOutcome:
    """Delete keys from one bucket through DeleteObjects, 1,000 a call, reading per-key errors.

    S3 reports a key that does not exist as deleted, which is what every caller wants.
    `rename` maps an object key back to the name the caller uses in the outcome.
    """
    outcome = DeleteOutcome()
    for batch in _batches(({"Key": key} for key in keys), S3_DELETE_BATCH):
        failed = _delete_objects(client, bucket, batch)
        for item in batch:
            key = item["Key"]
            if key in failed:
                outcome.errors[rename(key)] = failed[key]
            else:
                outcome.deleted.append(rename(key))
    return outcome


def bucket_keeps_versions(client: Any, bucket: str) -> bool:
    """True when the bucket has versioning enabled or suspended: in both cases old versions may exist,
    and a plain delete would only add a delete marker while the data stays stored and billed."""
    status = client.get_bucket_versioning(Bucket=bucket).get("Status")
    return status in ("Enabled", "Suspended")


def iter_versions(client: Any, bucket: str, prefix: str) -> Iterator[tuple[str, str]]:
    """(key, version id) of every version and delete marker of the keys starting with `prefix`."""
    paginator = client.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for entry in (*page.get("Versions", []), *page.get("DeleteMarkers", [])):
            yield entry["Key"], entry["VersionId"]


def iter_keys_under(client: Any, bucket: str, prefix: str) -> Iterator[tuple[str, int]]:
    """(key, size) of every current object under a key prefix, a listing page at a time."""
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            yield entry["Key"], entry.get("Size", 0)


def delete_all_versions(client: Any, bucket: str, keys: Iterable[str]) -> DeleteOutcome:
    """Delete every stored version (and delete marker) of exactly these keys, 1,000 versions a call.

    A key is reported deleted once all its versions are gone; one failed version fails its key.
    """
    wanted = list(keys)
    wanted_set = set(wanted)
    versions = (
        {"Key": key, "VersionId": version}
        for requested in wanted
        for key, version in iter_versions(client, bucket, requested)
        if key == requested and key in wanted_set
    )
    errors: dict[str, str] = {}
    for batch in _batches(versions, S3_DELETE_BATCH):
        errors.update(_delete_objects(client, bucket, batch))
    return DeleteOutcome(deleted=[key for key in wanted if key not in errors], errors=errors)


def delete_keys_retrying_transient(
    delete: Callable[[list[str]], DeleteOutcome],
    keys: list[str],
    *,
    attempts: int = 3,
    base_delay: float = 0.2,
) -> DeleteOutcome:
    """Run `delete` on the keys, then again on just the keys that failed with a transient per-key
    error, with exponential backoff and jitter. Permanent per-key errors are returned at once."""
    outcome = DeleteOutcome()
    remaining = keys
    for attempt in range(attempts):
        result = delete(remaining)
        outcome.deleted.extend(result.deleted)
        transient = [key for key, message in result.errors.items() if is_transient_message(message)]
        for key, message in result.errors.items():
            if key not in transient or attempt == attempts - 1:
                outcome.errors[key] = message
        if not transient or attempt == attempts - 1:
            break
        remaining = transient
        time.sleep(base_delay * (2**attempt) * random.uniform(0.5, 1.5))
    return outcome


def _delete_objects(client: Any, bucket: str, objects: list[dict[str, str]]) -> dict[str, str]:
    """One DeleteObjects call; returns the per-key errors as {key: 'Code: Message'}."""
    response = client.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
    return {
        error["Key"]: f"{error.get('Code')}: {error.get('Message')}" for error in response.get("Errors", [])
    }


def _batches(items: Iterable[dict[str, str]], size: int) -> Iterator[list[dict[str, str]]]:
    batch: list[dict[str, str]] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
