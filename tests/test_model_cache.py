"""The model cache mirrored in a real local S3 server (moto over HTTP)."""
from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import boto3
import pytest

from s3_utils import S3Storage
from settings import load_settings
from worker.startup.model_sync import (
    MANIFEST_KEY,
    scan_cache,
    sync_models_down,
    upload_missing_models,
)

BLOB = "0f" * 20
BLOB_BYTES = os.urandom(300_000)
FILES = {
    f"hf/hub/models--org--tiny/blobs/{BLOB}": BLOB_BYTES,
    "hf/hub/models--org--tiny/refs/main": b"abc123",
    "torch/hub/checkpoints/align.pth": os.urandom(50_000),
    "nltk_data/tokenizers/punkt_tab/english/collocations.tab": b"",
}
LINK = "hf/hub/models--org--tiny/snapshots/abc123/model.safetensors"
LINK_TARGET = f"../../blobs/{BLOB}"


class RecordingStorage:
    """The real S3 storage, with a record of what was sent and fetched."""

    def __init__(self, storage):
        self._storage = storage
        self.put, self.downloaded = [], []

    def put_file(self, key, path, content_type=None):
        self.put.append(key)
        return self._storage.put_file(key, path, content_type)

    def put_json(self, key, value):
        self.put.append(key)
        return self._storage.put_json(key, value)

    def download_file(self, key, path):
        self.downloaded.append(key)
        return self._storage.download_file(key, path)

    def __getattr__(self, name):
        return getattr(self._storage, name)


def fill_cache(cache: Path) -> None:
    for relative, data in FILES.items():
        path = cache / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    link = cache / LINK
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(LINK_TARGET)
    # What must never be mirrored: hub locks and unfinished downloads.
    (cache / "hf/hub/.locks").mkdir(parents=True)
    (cache / "hf/hub/.locks/x.lock").write_bytes(b"")
    (cache / f"hf/hub/models--org--tiny/blobs/{BLOB}.incomplete").write_bytes(b"half")
    (cache / "xdg/pip").mkdir(parents=True)
    (cache / "xdg/pip/wheel.whl").write_bytes(b"pip cache")


@pytest.fixture
def env(s3_env):
    return {**s3_env, "ENABLE_S3_MODEL_CACHE": "true"}


@pytest.fixture
def storage(env):
    return RecordingStorage(S3Storage(load_settings(env)))


def upload(env, storage, cache):
    thread = upload_missing_models(load_settings(env), storage, cache)
    thread.join(30)
    assert not thread.is_alive()


def seeded(env, storage, tmp_path) -> Path:
    source = tmp_path / "worker-a"
    fill_cache(source)
    upload(env, storage, source)
    storage.put.clear()
    return source


def bucket_keys(env) -> set:
    client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    listing = client.list_objects_v2(Bucket=env["S3_BUCKET"]).get("Contents", [])
    return {item["Key"] for item in listing}


def test_upload_sends_model_files_links_and_a_manifest(env, storage, tmp_path):
    seeded(env, storage, tmp_path)
    assert bucket_keys(env) == {f"models/{r}" for r in FILES} | {MANIFEST_KEY}
    manifest = storage.get_json(MANIFEST_KEY)
    assert set(manifest["files"]) == set(FILES)
    for relative, data in FILES.items():
        assert manifest["files"][relative] == {"size": len(data),
                                               "sha256": hashlib.sha256(data).hexdigest()}
    assert manifest["links"] == {LINK: LINK_TARGET}


def test_first_start_downloads_second_downloads_nothing(env, storage, tmp_path):
    seeded(env, storage, tmp_path)
    settings = load_settings(env)
    cache = tmp_path / "worker-b"
    first = sync_models_down(settings, storage, cache)
    assert first.startswith(f"downloaded {len(FILES)} files")
    for relative, data in FILES.items():
        assert (cache / relative).read_bytes() == data
    assert (cache / LINK).is_symlink() and (cache / LINK).read_bytes() == BLOB_BYTES
    inodes = {r: (cache / r).stat().st_ino for r in FILES}
    storage.downloaded.clear()
    second = sync_models_down(settings, storage, cache)
    assert second.startswith(f"downloaded 0 files (0.0 GB), {len(FILES)} already present")
    assert storage.downloaded == []
    assert {r: (cache / r).stat().st_ino for r in FILES} == inodes


def test_corrupted_objects_are_detected_and_not_used(env, storage, tmp_path):
    seeded(env, storage, tmp_path)
    tampered = "torch/hub/checkpoints/align.pth"
    truncated = f"hf/hub/models--org--tiny/blobs/{BLOB}"
    good = FILES[tampered]
    storage.put_bytes(f"models/{tampered}", bytes([good[0] ^ 1]) + good[1:])
    storage.put_bytes(f"models/{truncated}", BLOB_BYTES[:1000])
    cache = tmp_path / "worker-c"
    summary = sync_models_down(load_settings(env), storage, cache)
    assert "2 rejected" in summary
    assert not (cache / tampered).exists() and not (cache / truncated).exists()
    assert (cache / "hf/hub/models--org--tiny/refs/main").read_bytes() == b"abc123"
    leftovers = [p for p in cache.rglob(".tmp-*")]
    assert leftovers == []
    # The worker then fetches good copies from the hub while loading (written
    # here) and replaces the bad objects after its load.
    for relative in (tampered, truncated):
        (cache / relative).parent.mkdir(parents=True, exist_ok=True)
        (cache / relative).write_bytes(FILES[relative])
    upload(env, storage, cache)
    assert sorted(storage.put) == sorted([f"models/{tampered}", f"models/{truncated}",
                                          MANIFEST_KEY])
    fresh = tmp_path / "worker-d"
    assert "rejected" not in sync_models_down(load_settings(env), storage, fresh)
    assert (fresh / tampered).read_bytes() == good


def test_upload_after_load_sends_only_missing_files(env, storage, tmp_path):
    seeded(env, storage, tmp_path)
    cache = tmp_path / "worker-b"
    sync_models_down(load_settings(env), storage, cache)
    new_file = cache / "hf/hub/models--org--asr/blobs/" / ("1a" * 20)
    new_file.parent.mkdir(parents=True)
    new_file.write_bytes(b"weights loaded from the hub")
    upload(env, storage, cache)
    relative = new_file.relative_to(cache).as_posix()
    assert storage.put == [f"models/{relative}", MANIFEST_KEY]
    manifest = storage.get_json(MANIFEST_KEY)
    assert set(manifest["files"]) == set(FILES) | {relative}
    storage.put.clear()
    upload(env, storage, cache)
    assert storage.put == []


def test_manifest_paths_cannot_leave_the_cache(env, storage, tmp_path):
    storage.put_bytes("models/evil", b"x")
    storage.put_json(MANIFEST_KEY, {
        "files": {"../../escaped": {"size": 1, "sha256": hashlib.sha256(b"x").hexdigest()}},
        "links": {"hf/hub/link": "../../../../etc/passwd"}})
    cache = tmp_path / "cache"
    summary = sync_models_down(load_settings(env), storage, cache)
    assert "1 rejected" in summary
    assert not (tmp_path.parent / "escaped").exists() and not (tmp_path / "escaped").exists()
    assert not (cache / "hf/hub/link").is_symlink()


def test_disabled_cache_does_nothing(env, storage, tmp_path):
    seeded(env, storage, tmp_path)
    settings = load_settings({**env, "ENABLE_S3_MODEL_CACHE": "false"})
    cache = tmp_path / "cache"
    assert sync_models_down(settings, storage, cache) == "disabled"
    assert not cache.exists() and storage.downloaded == []


def test_storage_failure_is_reported_not_raised(env, storage, tmp_path):
    storage.put_bytes(MANIFEST_KEY, b"{not json")
    result = sync_models_down(load_settings(env), storage, tmp_path / "cache")
    assert result.startswith("failed: storage_error")


def test_concurrent_syncs_into_one_folder_agree(env, storage, tmp_path):
    seeded(env, storage, tmp_path)
    settings = load_settings(env)
    cache = tmp_path / "shared-volume"
    results = []
    threads = [threading.Thread(target=lambda: results.append(
        sync_models_down(settings, storage, cache))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 3 and not any("rejected" in r or "failed" in r for r in results)
    for relative, data in FILES.items():
        assert (cache / relative).read_bytes() == data
    assert not list(cache.rglob(".tmp-*"))


def test_scan_skips_locks_partial_downloads_and_other_caches(tmp_path):
    fill_cache(tmp_path)
    files, links = scan_cache(tmp_path)
    assert set(files) == set(FILES)
    assert links == {LINK: LINK_TARGET}
