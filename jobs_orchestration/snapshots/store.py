"""Snapshot storage behind one small interface, chosen by a URL.

`file:///var/snapshots` stores under a local folder, `s3://bucket/prefix` in an S3 bucket,
`azure://container/prefix` in an Azure Blob container (the account comes from the connection string in
AZURE_STORAGE_CONNECTION_STRING, read when the store is opened and never logged). A key is always
relative to the store's root; one that would escape it is refused before any I/O.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import os
import posixpath
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from jobs_orchestration import settings
from jobs_orchestration.aws import s3
from jobs_orchestration.aws.s3 import DeleteOutcome
from jobs_orchestration.failures import Failure

log = logging.getLogger(__name__)

AZURE_DELETE_BATCH = 256
"""The most blobs one Azure Blob batch request takes."""
MAX_OPEN_FOLDERS = 1024
"""Folders a local store keeps open for a run of deletes (see `LocalFolderStore.deleting`); past this
many, a folder is opened for the call that needs it and closed again, as outside a run."""


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
    if ".." in parts or "." in parts:
        raise UnsafeStorageKey(f"storage key {key!r} has a '.' or '..' segment")
    if "" in parts:
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

    @contextlib.contextmanager
    def deleting(self) -> Iterator[None]:
        """A run of `delete_many` calls, possibly from several threads, that may share what one call
        would set up and tear down (the local store's opened folders). Calls outside it work alike."""
        yield


class LocalFolderStore(SnapshotStore):
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.url = self.root.as_uri()
        self._open_folders: dict[str, tuple[int, str]] | None = None
        """Folder (as in a key) -> descriptor and the path it was opened at, kept for the run of deletes
        `deleting` opened."""
        self._open_folders_lock = threading.Lock()
        self._runs_of_deletes = 0

    def path_for(self, key: str) -> Path:
        validate_key(key)
        path = self.root.joinpath(*key.split("/"))
        # Resolving follows symlinks, so a link that points out of the root is caught too.
        resolved = path.resolve()
        if not resolved.is_relative_to(self.root):
            raise UnsafeStorageKey(f"storage key {key!r} resolves outside the store root")
        return path

    def put(self, key: str, data: bytes) -> None:
        # Written to a temporary name beside the file, then renamed into place, both relative to the
        # opened folder. The temporary file is always new (O_EXCL, and O_NOFOLLOW for the name itself):
        # whatever already sits at its name, a link planted there or a killed write's leftover, is never
        # written through nor overwritten; the write takes a fresh name instead.
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        folder, _, name = key.rpartition("/")
        folder_fd = self._open_folder(folder)
        try:
            temporary, file_fd = _create_new_file(folder_fd, f".{name}", ".partial")
            try:
                with os.fdopen(file_fd, "wb") as file:
                    file.write(data)
                os.replace(temporary, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temporary, dir_fd=folder_fd)
                raise
        finally:
            os.close(folder_fd)

    def get(self, key: str) -> bytes:
        try:
            return self.path_for(key).read_bytes()
        except FileNotFoundError as error:
            raise SnapshotNotFound(key) from error

    def exists(self, key: str) -> bool:
        return self.path_for(key).is_file()

    @contextlib.contextmanager
    def deleting(self) -> Iterator[None]:
        """Keep each folder `delete_many` opens open until the run ends, so a folder is resolved and
        opened once per run rather than once per call (a cleanup batch of 5,000 files spreads over
        hundreds of folders). Before each call uses a kept folder, the kernel's own path of the opened
        folder (/proc/self/fd) must still be the one it was opened at: a folder moved away or replaced
        meanwhile is opened afresh, with the full check. The descriptors are closed only here, after
        every call has returned; at most MAX_OPEN_FOLDERS are kept. Runs that overlap (two cleanups
        given one store object) share the folders, which stay open until the last of them ends."""
        with self._open_folders_lock:
            if self._open_folders is None:
                self._open_folders = {}
            self._runs_of_deletes += 1
        try:
            yield
        finally:
            with self._open_folders_lock:
                self._runs_of_deletes -= 1
                folders: dict[str, tuple[int, str]] = {}
                if not self._runs_of_deletes:
                    folders, self._open_folders = self._open_folders or {}, None
            for folder_fd, _ in folders.values():
                os.close(folder_fd)

    def delete_many(self, keys: Sequence[str]) -> DeleteOutcome:
        # Unlinking removes a symlink itself, never its target, so only the folder a file is in must
        # resolve inside the root. Each folder is resolved and opened once per call (once per run inside
        # `deleting`), and its files are unlinked by name relative to it: no path is walked again per
        # file, and a folder swapped for a link after the check does not redirect the deletes.
        outcome = DeleteOutcome()
        by_folder: dict[str, list[tuple[str, str]]] = {}
        for key in keys:
            try:
                validate_key(key)
            except UnsafeStorageKey as error:
                outcome.errors[key] = Failure.of(error)
                continue
            folder, _, name = key.rpartition("/")
            by_folder.setdefault(folder, []).append((key, name))
        unlink, deleted = os.unlink, outcome.deleted
        for folder, files in by_folder.items():
            try:
                folder_fd, owned = self._folder_for_deletes(folder)
            except FileNotFoundError:
                outcome.deleted.extend(key for key, _ in files)  # the folder, and so its files, are gone
                continue
            except (OSError, UnsafeStorageKey) as error:
                outcome.errors.update((key, Failure.of(error)) for key, _ in files)
                continue
            try:
                for key, name in files:
                    try:
                        unlink(name, dir_fd=folder_fd)
                    except FileNotFoundError:
                        deleted.append(key)
                    except OSError as error:
                        outcome.errors[key] = Failure.of(error)
                    else:
                        deleted.append(key)
            finally:
                if owned:
                    os.close(folder_fd)
        return outcome

    def _folder_for_deletes(self, folder: str) -> tuple[int, bool]:
        """A descriptor of the folder, and whether the caller must close it (False when it belongs to
        the run `deleting` opened)."""
        open_folders = self._open_folders
        if open_folders is None:
            return self._open_folder(folder), True
        kept = open_folders.get(folder)
        if kept is not None:
            folder_fd, opened_at = kept
            if _opened_path(folder_fd) == opened_at:
                return folder_fd, False
            return self._open_folder(folder), True  # moved or replaced since: not the folder to use
        folder_fd = self._open_folder(folder)
        path = _opened_path(folder_fd)
        with self._open_folders_lock:
            open_folders = self._open_folders
            if open_folders is None or path is None or len(open_folders) >= MAX_OPEN_FOLDERS:
                return folder_fd, True
            if folder in open_folders:  # another thread opened it meanwhile: keep one descriptor
                os.close(folder_fd)
                return open_folders[folder][0], False
            open_folders[folder] = (folder_fd, path)
            return folder_fd, False

    def _open_folder(self, folder: str) -> int:
        resolved = self.root.joinpath(*folder.split("/")).resolve() if folder else self.root
        if not resolved.is_relative_to(self.root):
            raise UnsafeStorageKey(f"storage folder {folder!r} resolves outside the store root")
        return os.open(resolved, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def iter_keys(self) -> Iterator[str]:
        for path in self.root.rglob("*"):
            if path.is_file() and not path.name.startswith("."):
                yield path.relative_to(self.root).as_posix()


def _opened_path(folder_fd: int) -> str | None:
    """Where the kernel says the opened folder is now, or None where it cannot tell (no /proc)."""
    try:
        return os.readlink(f"/proc/self/fd/{folder_fd}")
    except OSError:
        return None


def _create_new_file(folder_fd: int, stem: str, suffix: str, attempts: int = 8) -> tuple[str, int]:
    """Create a file that did not exist, in the opened folder: `stem + suffix`, or, when that name is
    taken, `stem` + a random part + `suffix`. Returns its name and a descriptor open for writing."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    names = [stem + suffix] + [f"{stem}.{secrets.token_hex(8)}{suffix}" for _ in range(attempts - 1)]
    for name in names:
        try:
            return name, os.open(name, flags, 0o666, dir_fd=folder_fd)
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name for {stem!r}: {attempts} names tried were all taken")


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
                outcome.errors[key] = Failure.of(error)
        outcome.merge(
            s3.delete_keys(self.client, self.bucket, list(by_object_key), rename=by_object_key.__getitem__)
        )
        return outcome

    def iter_keys(self) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        prefix = f"{self.prefix}/" if self.prefix else ""
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"][len(prefix) :]


class AzureBlobSnapshotStore(SnapshotStore):
    """Snapshots as block blobs in one container, under an optional prefix."""

    def __init__(self, container_client: Any, prefix: str = "") -> None:
        self.container = container_client
        self.prefix = prefix.strip("/")
        name = container_client.container_name
        self.url = f"azure://{name}/{self.prefix}" if self.prefix else f"azure://{name}"

    def blob_name(self, key: str) -> str:
        validate_key(key)
        return posixpath.join(self.prefix, key) if self.prefix else key

    def put(self, key: str, data: bytes) -> None:
        self.container.upload_blob(self.blob_name(key), data, overwrite=True)

    def get(self, key: str) -> bytes:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self.container.download_blob(self.blob_name(key)).readall()
        except ResourceNotFoundError as error:
            raise SnapshotNotFound(key) from error

    def exists(self, key: str) -> bool:
        return self.container.get_blob_client(self.blob_name(key)).exists()

    def delete_many(self, keys: Sequence[str]) -> DeleteOutcome:
        outcome = DeleteOutcome()
        by_blob_name: dict[str, str] = {}
        for key in keys:
            try:
                by_blob_name[self.blob_name(key)] = key
            except UnsafeStorageKey as error:
                outcome.errors[key] = Failure.of(error)
        names = list(by_blob_name)
        for start in range(0, len(names), AZURE_DELETE_BATCH):
            batch = names[start : start + AZURE_DELETE_BATCH]
            outcome.merge(self._delete_batch(batch, rename=by_blob_name.__getitem__))
        return outcome

    def _delete_batch(self, names: list[str], *, rename: Callable[[str], str]) -> DeleteOutcome:
        """One batch request; the sub-responses come back in request order, one per blob. A batch the
        service refuses as a whole (an emulator or account without the Blob Batch API answers 4xx or
        5xx to the request itself) is deleted blob by blob instead."""
        from azure.core.exceptions import HttpResponseError

        outcome = DeleteOutcome()
        try:
            responses = list(self.container.delete_blobs(*names, raise_on_any_failure=False))
        except HttpResponseError as error:
            log.warning(
                "%s: the Blob Batch request for %d blobs was refused (%s %s); deleting them one by one",
                self.url,
                len(names),
                error.status_code,
                _azure_error_code(error),
            )
            return self._delete_one_by_one(names, rename=rename)
        except Exception as error:  # the request never got an answer: every blob in it is still there
            failure = Failure.of(error)
            outcome.errors.update({rename(name): failure for name in names})
            return outcome
        for name, response in zip(names, responses, strict=True):
            # 202 is deleted; 404 means it was already gone, which is what the caller wants.
            if response.status_code in (200, 202, 404):
                outcome.deleted.append(rename(name))
            else:
                code = response.headers.get("x-ms-error-code") or response.reason
                outcome.errors[rename(name)] = _azure_failure(response.status_code, code)
        return outcome

    def _delete_one_by_one(self, names: list[str], *, rename: Callable[[str], str]) -> DeleteOutcome:
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

        outcome = DeleteOutcome()
        for name in names:
            try:
                self.container.delete_blob(name)
            except ResourceNotFoundError:
                outcome.deleted.append(rename(name))
            except HttpResponseError as error:
                outcome.errors[rename(name)] = _azure_failure(error.status_code, _azure_error_code(error))
            except Exception as error:
                outcome.errors[rename(name)] = Failure.of(error)
            else:
                outcome.deleted.append(rename(name))
        return outcome

    def iter_keys(self) -> Iterator[str]:
        prefix = f"{self.prefix}/" if self.prefix else ""
        for name in self.container.list_blob_names(name_starts_with=prefix or None):
            yield name[len(prefix) :]


def _azure_failure(status: int | None, code: str) -> Failure:
    """A blob the service refused: throttled or its own trouble (5xx) is worth another attempt."""
    return Failure(f"{status} {code}", "", transient=status == 429 or (status or 0) >= 500)


def _azure_error_code(error: Any) -> str:
    return getattr(error, "error_code", None) or getattr(error, "reason", None) or type(error).__name__


def azure_container_client(connection_string: str, container: str) -> Any:
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(connection_string)
    return service.get_container_client(container)


def open_snapshot_store(
    url: str,
    *,
    s3_client_factory: Callable[[], Any] | None = None,
    azure_connection_string: str | None = None,
) -> SnapshotStore:
    """The store a SNAPSHOT_STORAGE_URL names: file:///path, s3://bucket/prefix or
    azure://container/prefix. An Azure store takes its connection string from the argument, else from
    AZURE_STORAGE_CONNECTION_STRING; the string holds the account key, so it never enters a message."""
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
    if parsed.scheme == "azure":
        if not parsed.netloc:
            raise ValueError(
                f"SNAPSHOT_STORAGE_URL {url!r}: an azure URL must name a container (azure://container/prefix)"
            )
        if not azure_connection_string:
            configured = settings.load_settings().azure_storage_connection_string
            azure_connection_string = configured.get_secret_value() if configured else None
        if not azure_connection_string:
            raise ValueError(
                f"SNAPSHOT_STORAGE_URL {url!r} needs {settings.AZURE_STORAGE_CONNECTION_STRING} to be set"
            )
        return AzureBlobSnapshotStore(
            azure_container_client(azure_connection_string, parsed.netloc), parsed.path
        )
    raise ValueError(
        f"SNAPSHOT_STORAGE_URL {url!r} has an unsupported scheme {parsed.scheme!r}; "
        "expected file:///path, s3://bucket/prefix or azure://container/prefix"
    )
