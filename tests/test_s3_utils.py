"""Storage: both backends keep one interface, against a real local S3 server.

The S3 backend talks HTTP to moto's ThreadedMotoServer (conftest ``s3_env``);
the local backend writes to a temp folder. Nothing is mocked: request headers
and attempt counts are observed through botocore's own event hooks.
"""
from __future__ import annotations

import hashlib
import os
import socket
import threading
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse
from urllib.request import url2pathname

import pytest
import requests

from s3_utils import MULTIPART_THRESHOLD, LocalStorage, S3Storage, get_storage
from settings import load_settings
from worker.core.errors import NOT_FOUND, STORAGE_ERROR, WorkerError

BACKENDS = ["local", "s3", "s3_prefixed"]
PREFIX = "tenant/a"


def _storage(env: dict):
    return get_storage(load_settings(env))


def _raw_client(env: dict):
    import boto3

    return boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(params=BACKENDS)
def backend(request):
    """(storage, env) for each backend; the prefixed S3 one sets S3_PREFIX."""
    if request.param == "local":
        env = request.getfixturevalue("local_env")
    else:
        env = dict(request.getfixturevalue("s3_env"))
        if request.param == "s3_prefixed":
            env["S3_PREFIX"] = f"/{PREFIX}/"  # slashes are trimmed by settings
    return _storage(env), env


def _read_url(url: str) -> bytes:
    if url.startswith("file://"):
        return Path(url2pathname(urlparse(url).path)).read_bytes()
    response = requests.get(url, timeout=10)
    response.raise_for_status()
    return response.content


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---- the shared interface -------------------------------------------------

def test_bytes_round_trip(backend):
    storage, _ = backend
    assert storage.put_bytes("voices/alice/ref.wav", b"RIFF-data") is True
    assert storage.get_bytes("voices/alice/ref.wav") == b"RIFF-data"


def test_json_round_trip(backend):
    storage, _ = backend
    storage.put_json("jobs/1/job.json", {"status": "COMPLETED", "n": 3, "text": "héllo"})
    assert storage.get_json("jobs/1/job.json") == {"status": "COMPLETED", "n": 3,
                                                   "text": "héllo"}


def test_invalid_json_is_a_storage_error(backend):
    storage, _ = backend
    storage.put_bytes("jobs/1/job.json", b"{not json")
    with pytest.raises(WorkerError) as caught:
        storage.get_json("jobs/1/job.json")
    assert caught.value.code == STORAGE_ERROR


def test_missing_keys_read_as_none(backend, tmp_path):
    storage, _ = backend
    assert storage.get_bytes("voices/nobody/ref.wav") is None
    assert storage.get_json("jobs/none/job.json") is None
    assert storage.head("voices/nobody/ref.wav") is None
    assert storage.download_file("voices/nobody/ref.wav", tmp_path / "out.wav") is False
    assert list(storage.list("voices/nobody/")) == []


def test_require_missing_is_not_found(backend):
    storage, _ = backend
    with pytest.raises(WorkerError) as caught:
        storage.require("voices/nobody/voice.json", "voice 'nobody'")
    assert caught.value.code == NOT_FOUND
    assert "voice 'nobody'" in caught.value.message


def test_head_reports_size(backend):
    storage, _ = backend
    storage.put_bytes("a/b.bin", b"x" * 1234)
    info = storage.head("a/b.bin")
    assert info.key == "a/b.bin"
    assert info.size == 1234
    assert info.last_modified > 0
    assert storage.require("a/b.bin", "b").size == 1234


def test_list_with_prefix(backend):
    storage, _ = backend
    for key in ("voices/alice/voice.json", "voices/alice/ref.wav",
                "voices/bob/voice.json", "jobs/1/job.json"):
        storage.put_bytes(key, key.encode())
    listed = {info.key: info.size for info in storage.list("voices/alice/")}
    assert listed == {"voices/alice/voice.json": len("voices/alice/voice.json"),
                      "voices/alice/ref.wav": len("voices/alice/ref.wav")}
    assert sorted(info.key for info in storage.list("voices/")) == [
        "voices/alice/ref.wav", "voices/alice/voice.json", "voices/bob/voice.json"]
    assert len(list(storage.list(""))) == 4


def test_list_with_partial_prefix_matches_like_s3(local_env):
    storage = _storage(local_env)
    storage.put_bytes("voices/alice/voice.json", b"{}")
    storage.put_bytes("voices/albert/voice.json", b"{}")
    storage.put_bytes("voices/bob/voice.json", b"{}")
    assert sorted(info.key for info in storage.list("voices/al")) == [
        "voices/albert/voice.json", "voices/alice/voice.json"]


def test_delete_and_delete_prefix(backend):
    storage, _ = backend
    for key in ("voices/alice/voice.json", "voices/alice/ref.wav", "voices/bob/voice.json"):
        storage.put_bytes(key, b"1")
    storage.delete(["voices/bob/voice.json", "voices/bob/never-existed.json"])
    assert storage.get_bytes("voices/bob/voice.json") is None
    assert storage.delete_prefix("voices/alice/") == 2
    assert list(storage.list("voices/")) == []
    assert storage.delete_prefix("voices/alice/") == 0


def test_if_absent_keeps_the_existing_object(backend):
    storage, _ = backend
    assert storage.put_bytes("jobs/1/claim.json", b"first", if_absent=True) is True
    assert storage.put_bytes("jobs/1/claim.json", b"second", if_absent=True) is False
    assert storage.get_bytes("jobs/1/claim.json") == b"first"
    # Without if_absent the object is replaced.
    assert storage.put_bytes("jobs/1/claim.json", b"third") is True
    assert storage.get_bytes("jobs/1/claim.json") == b"third"


def test_put_file_and_download_file(backend, tmp_path):
    storage, _ = backend
    source = tmp_path / "in.wav"
    source.write_bytes(os.urandom(4096))
    storage.put_file("outputs/1/audio.wav", source)
    target = tmp_path / "out.wav"
    assert storage.download_file("outputs/1/audio.wav", target) is True
    assert target.read_bytes() == source.read_bytes()


def test_presigned_url_returns_the_bytes(backend):
    storage, _ = backend
    body = os.urandom(2048)
    key = "outputs/job 1/audio take.wav"  # spaces must survive URL quoting
    storage.put_bytes(key, body)
    assert _read_url(storage.presign(key, 600)) == body


def test_large_file_round_trips(backend, tmp_path):
    storage, env = backend
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(MULTIPART_THRESHOLD + 1024 * 1024))
    storage.put_file("outputs/big/audio.wav", source)
    target = tmp_path / "back.bin"
    assert storage.download_file("outputs/big/audio.wav", target) is True
    assert hashlib.sha256(target.read_bytes()).digest() == \
        hashlib.sha256(source.read_bytes()).digest()
    if storage.kind == "s3":
        # A multipart upload's ETag is "<md5 of part md5s>-<part count>".
        real_key = storage.prefix + "outputs/big/audio.wav"
        head = _raw_client(env).head_object(Bucket=env["S3_BUCKET"], Key=real_key)
        assert head["ETag"].strip('"').endswith("-2")


# ---- S3 specifics -------------------------------------------------------------

def test_s3_prefix_is_applied_to_real_keys(s3_env):
    env = {**s3_env, "S3_PREFIX": PREFIX}
    storage = _storage(env)
    storage.put_bytes("voices/alice/voice.json", b"{}")
    raw = _raw_client(env)
    keys = [item["Key"] for item in
            raw.list_objects_v2(Bucket=env["S3_BUCKET"]).get("Contents", [])]
    assert keys == [f"{PREFIX}/voices/alice/voice.json"]
    # Objects outside the prefix are invisible to the backend.
    raw.put_object(Bucket=env["S3_BUCKET"], Key="voices/other/voice.json", Body=b"{}")
    assert [info.key for info in storage.list("voices/")] == ["voices/alice/voice.json"]
    assert storage.get_bytes("voices/other/voice.json") is None
    assert f"/{PREFIX}/voices/alice/voice.json" in unquote(
        urlparse(storage.presign("voices/alice/voice.json", 60)).path)


def test_s3_content_type_follows_the_extension(s3_env):
    storage = _storage(s3_env)
    storage.put_bytes("outputs/1/audio.wav", b"RIFF")
    storage.put_json("outputs/1/result.json", {})
    raw = _raw_client(s3_env)
    bucket = s3_env["S3_BUCKET"]
    assert raw.head_object(Bucket=bucket, Key="outputs/1/audio.wav")["ContentType"] == \
        "audio/wav"
    assert raw.head_object(Bucket=bucket, Key="outputs/1/result.json")["ContentType"] == \
        "application/json"


def _query(url: str) -> dict:
    return {name: values[0] for name, values in parse_qs(urlparse(url).query).items()}


@pytest.mark.parametrize("endpoint", [None, "https://s3.example-storage.test:9000"])
def test_presigned_url_is_sigv4_with_the_asked_expiry(endpoint):
    env = {"STORAGE_BACKEND": "s3", "S3_BUCKET": "my-bucket", "AWS_REGION": "eu-west-2",
           "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"}
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    url = _storage(env).presign("outputs/1/audio.wav", 1234)
    query = _query(url)
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Expires"] == "1234"
    assert query["X-Amz-Credential"].endswith("/eu-west-2/s3/aws4_request")
    assert "X-Amz-Signature" in query and "Signature" not in query
    if endpoint:
        assert urlparse(url).hostname.endswith("s3.example-storage.test")


@pytest.mark.parametrize("style, host, path", [
    ("path", "s3.example-storage.test", "/my-bucket/outputs/a.wav"),
    ("virtual", "my-bucket.s3.example-storage.test", "/outputs/a.wav"),
])
def test_addressing_style_shows_in_the_url(style, host, path):
    env = {"STORAGE_BACKEND": "s3", "S3_BUCKET": "my-bucket",
           "AWS_ENDPOINT_URL": "https://s3.example-storage.test",
           "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret",
           "S3_ADDRESSING_STYLE": style}
    url = urlparse(_storage(env).presign("outputs/a.wav", 60))
    assert (url.hostname, url.path) == (host, path)


def test_s3_client_config(s3_env):
    config = _storage(s3_env).client.meta.config
    assert config.signature_version == "s3v4"
    assert config.retries["mode"] == "standard"
    # botocore turns Config(retries={"max_attempts": n}) into n retries, n + 1 tries.
    assert 1 < config.retries["total_max_attempts"] <= 5
    assert config.request_checksum_calculation == "when_required"
    assert config.response_checksum_validation == "when_required"
    assert config.connect_timeout and config.read_timeout


def test_s3_put_sends_no_flexible_checksum(s3_env):
    storage = _storage(s3_env)
    sent = []
    def hook(request, **_):
        sent.append(dict(request.headers))
    storage.client.meta.events.register("before-send.s3.PutObject", hook)
    try:
        storage.put_bytes("outputs/1/audio.wav", b"RIFF")
    finally:
        storage.client.meta.events.unregister("before-send.s3.PutObject", hook)
    assert sent, "the hook saw no PutObject request"
    names = {name.lower() for name in sent[0]}
    assert not any(name.startswith("x-amz-checksum-") for name in names), names
    assert "x-amz-sdk-checksum-algorithm" not in names


def _call_bounded(function, limit_s: float = 90):
    """Run ``function`` in a thread; fail instead of hanging past ``limit_s``."""
    outcome = {}

    def target():
        try:
            outcome["value"] = function()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(limit_s)
    assert not thread.is_alive(), f"storage call still running after {limit_s} s"
    return outcome


def test_unreachable_endpoint_is_a_storage_error_after_bounded_retries(s3_env):
    env = {**s3_env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{_closed_port()}"}
    storage = _storage(env)
    attempts = []
    storage.client.meta.events.register("before-send.s3.GetObject",
                                        lambda **_: attempts.append(1))
    outcome = _call_bounded(lambda: storage.get_bytes("voices/alice/voice.json"))
    error = outcome.get("error")
    assert isinstance(error, WorkerError), outcome
    assert error.code == STORAGE_ERROR
    assert "endpoint" in error.message
    assert len(attempts) == storage.client.meta.config.retries["total_max_attempts"]
    assert 1 < len(attempts) <= 5


def test_unreachable_endpoint_fails_writes_and_lists_too(s3_env):
    env = {**s3_env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{_closed_port()}",
           "S3_PREFIX": "unreachable"}  # a separate cached client from the test above
    storage = _storage(env)
    for call in (lambda: storage.put_bytes("a.json", b"{}"),
                 lambda: list(storage.list("voices/"))):
        error = _call_bounded(call).get("error")
        assert isinstance(error, WorkerError) and error.code == STORAGE_ERROR, error


@pytest.mark.parametrize("operation", ["get_bytes", "list"])
def test_missing_bucket_is_a_storage_error(s3_env, operation):
    storage = _storage({**s3_env, "S3_BUCKET": "no-such-bucket-here"})
    with pytest.raises(WorkerError) as caught:
        if operation == "get_bytes":
            storage.get_bytes("voices/alice/voice.json")
        else:
            list(storage.list("voices/"))
    assert caught.value.code == STORAGE_ERROR


# ---- local specifics ------------------------------------------------------------

@pytest.mark.parametrize("key", ["../x", "voices/../../x", "/etc/passwd"])
def test_local_key_escaping_the_root_is_refused(local_env, key):
    storage = _storage(local_env)
    for call in (lambda: storage.put_bytes(key, b"x"), lambda: storage.get_bytes(key),
                 lambda: storage.head(key), lambda: storage.delete([key])):
        with pytest.raises(WorkerError) as caught:
            call()
        assert caught.value.code == STORAGE_ERROR
    assert not (Path(local_env["LOCAL_STORAGE_DIR"]).parent / "x").exists()


def test_local_presign_is_a_file_url_inside_the_root(local_env):
    storage = _storage(local_env)
    storage.put_bytes("outputs/1/audio.wav", b"RIFF")
    url = storage.presign("outputs/1/audio.wav", 60)
    assert url.startswith("file://")
    path = Path(url2pathname(urlparse(url).path))
    assert path.is_relative_to(Path(local_env["LOCAL_STORAGE_DIR"]).resolve())


def test_get_storage_picks_the_backend(local_env, s3_env):
    assert isinstance(_storage(local_env), LocalStorage)
    assert isinstance(_storage(s3_env), S3Storage)
    assert _storage(s3_env) is _storage(dict(s3_env))  # one client per settings value
