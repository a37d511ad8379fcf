"""S3 deletes and listings every job shares: DeleteObjects 1,000 keys a call with per-key failures, and
every version removed where a bucket keeps versions."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from jobs_orchestration.aws.batching import (
    DEFAULT_ATTEMPTS,
    DEFAULT_RETRY_DELAY_SECONDS,
    S3_DELETE_OBJECTS,
    BatchOutcome,
    Entry,
    call_in_batches,
)
from jobs_orchestration.connectivity import ServiceUnreachable
from jobs_orchestration.failures import Failure


@dataclass
class DeleteOutcome:
    """What a bulk delete did: keys now gone (already missing counts as gone) and keys that failed."""

    deleted: list[str] = field(default_factory=list)
    errors: dict[str, Failure] = field(default_factory=dict)

    def merge(self, other: DeleteOutcome) -> None:
        self.deleted.extend(other.deleted)
        self.errors.update(other.errors)


def delete_keys(
    client: Any,
    bucket: str,
    keys: Sequence[str],
    *,
    all_versions: bool = False,
    rename: Callable[[str], str] = lambda key: key,
    attempts: int = DEFAULT_ATTEMPTS,
    retry_delay_seconds: float = DEFAULT_RETRY_DELAY_SECONDS,
) -> DeleteOutcome:
    """Delete keys from one bucket, 1,000 a DeleteObjects call, sending again only the keys that failed
    transiently. With `all_versions`, every stored version and delete marker of exactly these keys goes,
    and a key is deleted once all its versions are; one failed version fails its key. S3 reports a key
    that does not exist as deleted, which is what every caller wants. `rename` maps an object key to the
    name the caller uses in the outcome. Raises `ServiceUnreachable` when S3 stops answering."""
    wanted = list(keys)
    if all_versions:
        wanted_set = set(wanted)
        objects = (
            {"Key": key, "VersionId": version}
            for requested in wanted
            for key, version in iter_versions(client, bucket, requested)
            if key == requested and key in wanted_set
        )
    else:
        objects = ({"Key": key} for key in wanted)
    result = _delete_objects(
        client,
        bucket,
        objects,
        all_versions=all_versions,
        attempts=attempts,
        retry_delay_seconds=retry_delay_seconds,
    )
    if result.unanswered:
        raise ServiceUnreachable(f"S3 ({bucket}): {result.unanswered_error}")
    errors = {entry["Key"]: failure for entry, failure in result.failed}
    return DeleteOutcome(
        deleted=[rename(key) for key in wanted if key not in errors],
        errors={rename(key): failure for key, failure in errors.items()},
    )


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


def _delete_objects(
    client: Any,
    bucket: str,
    objects: Iterable[Entry],
    *,
    all_versions: bool,
    attempts: int,
    retry_delay_seconds: float,
) -> BatchOutcome[Entry]:
    """One DeleteObjects call per batch; a failed entry is found again by its key (and version)."""

    def delete(entries: list[Entry]) -> dict[int, Failure]:
        response = client.delete_objects(Bucket=bucket, Delete={"Objects": entries, "Quiet": True})
        positions = {
            (entry["Key"], entry.get("VersionId")): position for position, entry in enumerate(entries)
        }
        return {
            positions[(error["Key"], error.get("VersionId") if all_versions else None)]: Failure.of_entry(
                str(error.get("Code", "")), str(error.get("Message", ""))
            )
            for error in response.get("Errors", [])
        }

    return call_in_batches(
        delete,
        objects,
        lambda entry: entry,
        S3_DELETE_OBJECTS,
        attempts=attempts,
        retry_delay_seconds=retry_delay_seconds,
    )
