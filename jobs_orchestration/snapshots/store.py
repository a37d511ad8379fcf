"""Snapshot storage behind one small interface, chosen by a URL.

`file:///var/snapshots` stores under a local folder, `s3://bucket/prefix` in an S3 bucket. A key is
always relative to the store's root; one that would escape it is refused before any I/O.
"""

from __future__ import annotations

import abc
import os
import posixpath
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

# Re-exported: the bulk S3 delete lives in a neutral module every job shares.
from jobs_orchestration.aws_s3 import S3_DELETE_BATCH, DeleteOutcome, delete_s3_keys

__all__ = [
    "S3_DELETE_BATCH",
    "DeleteOutcome",
    "LocalFolderStore",
    "S3SnapshotStore",
    "SnapshotNotFound",
    "SnapshotStore",
    "UnsafeStorageKey",
    "delete_s3_keys",
    "open_snapshot_store",
    "validate_key",
]


class UnsafeStorageKey(ValueError):
    """A storage key that is empty, absolute, or would leave the store's root."""


class SnapshotNotFound(KeyError):
    pass


def validate_key(key: str) -> str:
    """Return the key in normal form, or raise UnsafeStorageKey naming what is wrong with it."""
    if not isinstance(key, str) or not key:
        raise UnsafeStorageKey(f"storage key {key!r} is empty")
    if "\x00" in key:
        raise UnsafeStorageKey(f"storage key {key!r} contains a NUL byte")
    if "\\" in key:
        raise UnsafeStorageKey(f"storage key {key!r} contains a backslash")
    if key.startswith("/"):
        raise UnsafeStorageKey(f"storage key {key!r} is absolute")
    parts = key.split("/")
    if any(part in ("..", ".") for part in parts):
        raise UnsafeStorageKey(f"storage key {key!r} has a '.' or '..' segment")
    if any(part == "" for part in parts):
        raise UnsafeStorageKey(f"storage key {key!r} has an empty segment")
    return key


class SnapshotStore(abc.ABC):
    """Where snapshot files live. Keys are '/'-separated paths relative to the store's root."""

    url: str

    @abc.abstractmethod
    def put(self, key: str, data: bytes) -> None: ...

    @abc.abstractmethod
    def get(self, key: str) -> bytes: ...

    @abc.abstractmethod
    def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def delete_many(self, keys: Sequence[str]) -> DeleteOutcome:
        """Delete the keys; a key that is already missing is reported as deleted."""

    @abc.abstractmethod
    def iter_keys(self) -> Iterator[str]: ...

    def delete(self, key: str) -> None:
        outcome = self.delete_many([key])
        if outcome.errors:
            raise OSError(f"could not delete snapshot {key!r}: {outcome.errors[key]}")


class LocalFolderStore(SnapshotStore):
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.url = self.root.as_uri()

    def path_for(self, key: str) -> Path:
        validate_key(key)
        path = self.root.joinpath(*key.split("/"))
        # Resolving follows symlinks, so a link that points out of the root is caught too.
        resolved = path.resolve()
        if not resolved.is_relative_to(self.root):
            raise UnsafeStorageKey(f"storage key {key!r} resolves outside the store root")
        return path

    def put(self, key: str, data: bytes) -> None:
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.partial")
        temporary.write_bytes(data)
        temporary.replace(path)

    def get(self, key: str) -> bytes:
        try:
            return self.path_for(key).read_bytes()
        except FileNotFoundError as error:
            raise SnapshotNotFound(key) from error

    def exists(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def delete_many(self, keys: Sequence[str]) -> DeleteOutcome:
        outcome = DeleteOutcome()
        for key in keys:
            try:
                self.path_for(key).unlink(missing_ok=True)
            except (OSError, UnsafeStorageKey) as error:
                outcome.errors[key] = str(error)
            else:
                outcome.deleted.append(key)
        return outcome

    def iter_keys(self) -> Iterator[str]:
        for path in self.root.rglob("*"):
            if path.is_file() and not path.name.startswith("."):
                yield path.relative_to(self.root).as_posix()


class S3SnapshotStore(SnapshotStore):
    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"

    def object_key(self, key: str) -> str:
        validate_key(key)
        return posixpath.join(self.prefix, key) if self.prefix else key

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.object_key(key), Body=data)

    def get(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))
        except self.client.exceptions.NoSuchKey as error:
            raise SnapshotNotFound(key) from error
        return response["Body"].read()

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except self.client.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def delete_many(self, keys: Sequence[str]) -> DeleteOutcome:
        outcome = DeleteOutcome()
        by_object_key: dict[str, str] = {}
        for key in keys:
            try:
                by_object_key[self.object_key(key)] = key
            except UnsafeStorageKey as error:
                outcome.errors[key] = str(error)
        outcome.merge(
            delete_s3_keys(self.client, self.bucket, list(by_object_key), rename=by_object_key.__getitem__)
        )
        return outcome

    def iter_keys(self) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        prefix = f"{self.prefix}/" if self.prefix else ""
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"][len(prefix) :]


def open_snapshot_store(url: str, *, s3_client_factory: Callable[[], Any] | None = None) -> SnapshotStore:
    """The store a SNAPSHOT_STORAGE_URL names: file:///path or s3://bucket/prefix."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ValueError(f"SNAPSHOT_STORAGE_URL {url!r}: a file URL must name a local path (file:///...)")
        return LocalFolderStore(unquote(parsed.path))
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError(
                f"SNAPSHOT_STORAGE_URL {url!r}: an s3 URL must name a bucket (s3://bucket/prefix)"
            )
        if s3_client_factory is None:
            raise ValueError("an s3:// snapshot store needs an S3 client")
        return S3SnapshotStore(s3_client_factory(), parsed.netloc, parsed.path)
    raise ValueError(
        f"SNAPSHOT_STORAGE_URL {url!r} has an unsupported scheme {parsed.scheme!r}; "
        "expected file:///path or s3://bucket/prefix"
    )
