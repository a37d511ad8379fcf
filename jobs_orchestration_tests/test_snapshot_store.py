import os
import uuid

import pytest

from jobs_orchestration.defs.resources import SnapshotStoreResource
from jobs_orchestration.snapshots.store import (
    AzureBlobSnapshotStore,
    LocalFolderStore,
    S3SnapshotStore,
    SnapshotNotFound,
    UnsafeStorageKey,
    azure_container_client,
    open_snapshot_store,
)

ESCAPING_KEYS = [
    "../outside.pdf",
    "a/../../outside.pdf",
    "/etc/passwd",
    "a//b.pdf",
    "",
    "a/./b.pdf",
    "a\\..\\b",
    "nul\x00.pdf",
]


def new_azure_container(connection_string: str):
    container = azure_container_client(connection_string, f"snapshots-{uuid.uuid4().hex[:12]}")
    container.create_container()
    return container


@pytest.fixture(
    params=[
        "folder",
        pytest.param("s3", marks=pytest.mark.integration),
        pytest.param("azure", marks=pytest.mark.integration),
    ]
)
def store(request, tmp_path):
    if request.param == "folder":
        return LocalFolderStore(tmp_path / "root")
    if request.param == "s3":
        local_aws = request.getfixturevalue("local_aws")
        return S3SnapshotStore(local_aws.client("s3"), "email-parser-snapshots", "snapshots/v1")
    connection_string = request.getfixturevalue("azurite_connection_string")
    return AzureBlobSnapshotStore(new_azure_container(connection_string), "snapshots/v1")


def test_write_read_delete(store):
    store.put("2026/11/a.pdf", b"%PDF-1.7 one page")
    assert store.exists("2026/11/a.pdf")
    assert store.get("2026/11/a.pdf") == b"%PDF-1.7 one page"
    assert list(store.iter_keys()) == ["2026/11/a.pdf"]

    outcome = store.delete_many(["2026/11/a.pdf"])
    assert outcome.deleted == ["2026/11/a.pdf"] and outcome.errors == {}
    assert not store.exists("2026/11/a.pdf")
    with pytest.raises(SnapshotNotFound):
        store.get("2026/11/a.pdf")


def test_deleting_a_missing_key_is_success(store):
    outcome = store.delete_many(["never/stored.png"])
    assert outcome.deleted == ["never/stored.png"]
    store.delete("never/stored.png")


@pytest.mark.parametrize("key", ESCAPING_KEYS)
def test_escaping_keys_are_refused(store, key):
    with pytest.raises(UnsafeStorageKey):
        store.put(key, b"x")
    outcome = store.delete_many([key])
    assert outcome.deleted == [] and key in outcome.errors


def test_a_symlink_out_of_the_folder_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.pdf").write_bytes(b"keep me")
    store = LocalFolderStore(tmp_path / "root")
    store.root.mkdir(parents=True)
    os.symlink(outside, store.root / "link")

    with pytest.raises(UnsafeStorageKey, match="outside the store root"):
        store.get("link/secret.pdf")
    assert store.delete_many(["link/secret.pdf"]).errors
    assert (outside / "secret.pdf").read_bytes() == b"keep me"


@pytest.mark.parametrize("placed", ["link to a file outside", "dangling link outside", "stale file"])
def test_a_write_never_goes_through_what_sits_at_its_temporary_name(tmp_path, placed):
    """A file is written to a temporary name beside it, then renamed into place. Whatever already sits
    at that name (a link out of the root planted by someone with write access to the folder, or a
    leftover of a killed write) is neither written through nor overwritten: the write takes a fresh name."""
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "victim"
    store = LocalFolderStore(tmp_path / "root")
    (store.root / "2026").mkdir(parents=True)
    temporary = store.root / "2026" / ".a.pdf.partial"
    if placed == "link to a file outside":
        target.write_bytes(b"keep me")
        os.symlink(target, temporary)
    elif placed == "dangling link outside":
        os.symlink(target, temporary)
    else:
        temporary.write_bytes(b"left by a killed write")

    store.put("2026/a.pdf", b"%PDF-1.7 snapshot")

    assert store.get("2026/a.pdf") == b"%PDF-1.7 snapshot"
    assert not (store.root / "2026" / "a.pdf").is_symlink()
    if placed == "link to a file outside":
        assert target.read_bytes() == b"keep me"
    elif placed == "dangling link outside":
        assert not target.exists()
    else:
        assert temporary.read_bytes() == b"left by a killed write"
    assert temporary.is_symlink() == (placed != "stale file")
    assert sorted(os.listdir(outside)) == (["victim"] if placed == "link to a file outside" else [])
    assert list(store.iter_keys()) == ["2026/a.pdf"]


def open_descriptors() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_a_run_of_deletes_opens_each_folder_once_and_closes_them_at_its_end(tmp_path):
    store = LocalFolderStore(tmp_path / "root")
    keys = [f"{folder}/{i}.pdf" for folder in ("a", "b", "c/d") for i in range(4)]
    for key in keys:
        store.put(key, b"x")
    opened = []
    original = store._open_folder

    def counting_open_folder(folder):
        opened.append(folder)
        return original(folder)

    store._open_folder = counting_open_folder
    before = open_descriptors()
    with store.deleting():
        first = store.delete_many(keys[::2])
        second = store.delete_many(keys[1::2] + ["never/there.pdf"])
        assert len(open_descriptors() - before) == 3  # a, b and c/d stay open for the run
    assert open_descriptors() == before
    assert sorted(opened) == ["a", "b", "c/d", "never"]  # the missing folder is not kept
    assert sorted(first.deleted + second.deleted) == sorted(keys + ["never/there.pdf"])
    assert first.errors == second.errors == {}
    assert list(store.iter_keys()) == []


def test_overlapping_runs_of_deletes_keep_the_folders_open_until_the_last_ends(tmp_path):
    store = LocalFolderStore(tmp_path / "root")
    for key in ("a/1.pdf", "a/2.pdf", "a/3.pdf"):
        store.put(key, b"x")
    before = open_descriptors()
    with store.deleting():
        with store.deleting():
            assert store.delete_many(["a/1.pdf"]).deleted == ["a/1.pdf"]
        assert len(open_descriptors() - before) == 1  # the outer run still uses the folder
        assert store.delete_many(["a/2.pdf"]).deleted == ["a/2.pdf"]
    assert open_descriptors() == before
    assert list(store.iter_keys()) == ["a/3.pdf"]


def test_a_folder_replaced_during_a_run_of_deletes_is_looked_at_again(tmp_path):
    """A folder kept open for the run may be moved away and another put at its name (a restore): a file
    missing from the folder as first opened is looked for in the folder now at that name."""
    store = LocalFolderStore(tmp_path / "root")
    store.put("2026/a.pdf", b"a")
    store.put("2026/b.pdf", b"b")
    with store.deleting():
        assert store.delete_many(["2026/a.pdf"]).deleted == ["2026/a.pdf"]
        os.rename(store.root / "2026", store.root / "moved")
        store.put("2026/c.pdf", b"c")
        outcome = store.delete_many(["2026/c.pdf", "2026/b.pdf"])
    assert sorted(outcome.deleted) == ["2026/b.pdf", "2026/c.pdf"] and outcome.errors == {}
    assert sorted(store.iter_keys()) == ["moved/b.pdf"]  # unlinked only by the name the key gives


def test_s3_bulk_delete_goes_in_batches_of_1000(local_aws):
    client = local_aws.client("s3")
    calls = []
    original = client.delete_objects

    def counting_delete_objects(**kwargs):
        calls.append(len(kwargs["Delete"]["Objects"]))
        return original(**kwargs)

    client.delete_objects = counting_delete_objects
    store = S3SnapshotStore(client, "email-parser-snapshots")
    keys = [f"bulk/{i}.png" for i in range(2345)]
    assert len(store.delete_many(keys).deleted) == 2345
    assert calls == [1000, 1000, 345]


def test_s3_per_key_errors_are_reported(local_aws):
    client = local_aws.client("s3")
    store = S3SnapshotStore(client, "email-parser-snapshots")
    store.put("a.pdf", b"a")
    store.put("b.pdf", b"b")
    original = client.delete_objects

    def failing_for_b(**kwargs):
        response = original(**kwargs)
        response["Errors"] = [{"Key": "b.pdf", "Code": "InternalError", "Message": "try again"}]
        return response

    client.delete_objects = failing_for_b
    outcome = store.delete_many(["a.pdf", "b.pdf"])
    assert outcome.deleted == ["a.pdf"]
    assert {key: str(failure) for key, failure in outcome.errors.items()} == {
        "b.pdf": "InternalError: try again"
    }


def test_store_is_chosen_by_url(tmp_path, local_aws):
    assert isinstance(open_snapshot_store((tmp_path / "s").as_uri()), LocalFolderStore)
    resource = SnapshotStoreResource(url="s3://email-parser-snapshots/snaps")
    store = resource.get_store()
    assert isinstance(store, S3SnapshotStore) and store.prefix == "snaps"
    store.put("x.pdf", b"x")
    assert store.get("x.pdf") == b"x"
    with pytest.raises(ValueError, match="unsupported scheme 'ftp'"):
        open_snapshot_store("ftp://host/path")


def test_azure_bulk_delete_goes_in_batches_of_256_with_per_blob_results(azurite_connection_string):
    container = new_azure_container(azurite_connection_string)
    batches = []
    original = container.delete_blobs

    def counting_delete_blobs(*names, **kwargs):
        batches.append(len(names))
        return original(*names, **kwargs)

    container.delete_blobs = counting_delete_blobs
    store = AzureBlobSnapshotStore(container, "p")
    stored = [f"bulk/{i}.png" for i in range(300)]
    for key in stored[:3]:
        store.put(key, b"x")
    outcome = store.delete_many(stored + ["../escape.png"])
    assert batches == [256, 44]
    assert sorted(outcome.deleted) == sorted(stored)  # never-stored blobs count as deleted
    assert list(outcome.errors) == ["../escape.png"]
    assert list(store.iter_keys()) == []


def test_azure_per_blob_errors_are_reported(azurite_connection_string):
    container = new_azure_container(azurite_connection_string)
    store = AzureBlobSnapshotStore(container)
    store.put("a.pdf", b"a")
    store.put("leased.pdf", b"b")
    # A blob under an active lease cannot be deleted without the lease id: a real per-blob failure.
    container.get_blob_client("leased.pdf").acquire_lease(lease_duration=-1)

    outcome = store.delete_many(["a.pdf", "leased.pdf"])
    assert outcome.deleted == ["a.pdf"]
    assert list(outcome.errors) == ["leased.pdf"] and "412" in str(outcome.errors["leased.pdf"])
    assert store.exists("leased.pdf") and not store.exists("a.pdf")


def test_azure_a_batch_the_service_refuses_is_deleted_blob_by_blob(azurite_connection_string):
    from azure.core.exceptions import HttpResponseError

    container = new_azure_container(azurite_connection_string)
    store = AzureBlobSnapshotStore(container, "p")
    for key in ("a.pdf", "b.pdf", "leased.pdf"):
        store.put(key, b"x")
    container.get_blob_client("p/leased.pdf").acquire_lease(lease_duration=-1)
    batches = []

    def refused_delete_blobs(*names, **kwargs):
        batches.append(len(names))
        error = HttpResponseError(message="This operation is not supported")
        error.status_code = 501
        raise error

    container.delete_blobs = refused_delete_blobs
    outcome = store.delete_many(["a.pdf", "b.pdf", "never.pdf", "leased.pdf"])
    assert batches == [4]
    assert sorted(outcome.deleted) == ["a.pdf", "b.pdf", "never.pdf"]
    assert list(outcome.errors) == ["leased.pdf"] and "412" in str(outcome.errors["leased.pdf"])
    assert list(store.iter_keys()) == ["leased.pdf"]


def test_azure_store_is_chosen_by_url(azurite_connection_string, monkeypatch):
    container = new_azure_container(azurite_connection_string)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite_connection_string)
    store = SnapshotStoreResource(url=f"azure://{container.container_name}/snaps").get_store()
    assert isinstance(store, AzureBlobSnapshotStore) and store.prefix == "snaps"
    store.put("x.pdf", b"x")
    assert store.get("x.pdf") == b"x"
    assert [blob.name for blob in container.list_blobs()] == ["snaps/x.pdf"]


def test_azure_store_without_a_connection_string_is_refused_without_leaking(monkeypatch):
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    with pytest.raises(ValueError, match="needs AZURE_STORAGE_CONNECTION_STRING"):
        open_snapshot_store("azure://snapshots/p")
    with pytest.raises(ValueError, match="must name a container"):
        open_snapshot_store("azure:///p")
