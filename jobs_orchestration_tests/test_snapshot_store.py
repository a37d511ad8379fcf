import os

import pytest

from jobs_orchestration.resources import SnapshotStoreResource
from jobs_orchestration.snapshots.store import (
    LocalFolderStore,
    S3SnapshotStore,
    SnapshotNotFound,
    UnsafeStorageKey,
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


@pytest.fixture(params=["folder", "s3"])
def store(request, tmp_path, local_aws):
    if request.param == "folder":
        return LocalFolderStore(tmp_path / "root")
    return S3SnapshotStore(local_aws.client("s3"), "email-parser-snapshots", "snapshots/v1")


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
    assert outcome.errors == {"b.pdf": "InternalError: try again"}


def test_store_is_chosen_by_url(tmp_path, local_aws):
    assert isinstance(open_snapshot_store((tmp_path / "s").as_uri()), LocalFolderStore)
    resource = SnapshotStoreResource(url="s3://email-parser-snapshots/snaps")
    store = resource.get_store()
    assert isinstance(store, S3SnapshotStore) and store.prefix == "snaps"
    store.put("x.pdf", b"x")
    assert store.get("x.pdf") == b"x"
    with pytest.raises(ValueError, match="unsupported scheme 'ftp'"):
        open_snapshot_store("ftp://host/path")
