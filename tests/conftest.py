"""Shared fixtures: a real S3-compatible server on 127.0.0.1, isolated storage."""
from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

_bucket_numbers = itertools.count()


@pytest.fixture(scope="session")
def s3_endpoint():
    """moto's S3 server over real HTTP; boto3 talks to it as to any endpoint."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_endpoint):
    """Env for a fresh, empty bucket on the local S3 server."""
    import boto3

    bucket = f"test-bucket-{os.getpid()}-{next(_bucket_numbers)}"
    env = {
        "STORAGE_BACKEND": "s3",
        "S3_BUCKET": bucket,
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "S3_ADDRESSING_STYLE": "path",
    }
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                 aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket=bucket)
    return env


@pytest.fixture
def local_env(tmp_path):
    """Env for the local-directory backend in a temp folder."""
    return {"STORAGE_BACKEND": "local", "LOCAL_STORAGE_DIR": str(tmp_path / "storage")}


def _package_reference() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("f5_tts")
    return Path(list(spec.submodule_search_locations)[0]) / "infer/examples/basic/basic_ref_en.wav"


REFERENCE_TEXT = "Some call me nature, others call me mother nature."


@pytest.fixture(scope="session")
def reference_wav() -> bytes:
    """Real speech: the clip the f5-tts package ships (5.3 s, 24 kHz mono)."""
    return _package_reference().read_bytes()


@pytest.fixture(scope="session")
def long_reference_wav(reference_wav) -> bytes:
    """About 17 s of speech with pauses: three takes of the package clip."""
    import io

    import numpy as np
    import soundfile

    samples, rate = soundfile.read(io.BytesIO(reference_wav), dtype="float32")
    pause = np.zeros(int(0.4 * rate), dtype=np.float32)
    joined = np.concatenate([samples, pause, samples, pause, samples])
    buffer = io.BytesIO()
    soundfile.write(buffer, joined, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


class Worker:
    """Runs jobs through the real handler with a given environment."""

    def __init__(self, monkeypatch, env: dict):
        self.env = dict(env)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        self._numbers = itertools.count()

    def __call__(self, payload: dict, job_id: str = None) -> dict:
        import handler

        job_id = job_id or f"job-{os.getpid()}-{next(self._numbers)}"
        return handler.handler({"id": job_id, "input": payload})

    @property
    def storage(self):
        from s3_utils import get_storage
        from settings import load_settings

        return get_storage(load_settings(self.env))


_WORKER_ENV_NAMES = ("STORAGE_BACKEND", "LOCAL_STORAGE_DIR", "S3_BUCKET", "S3_PREFIX",
                     "AWS_ENDPOINT_URL", "DEFAULT_VOICE", "ALLOW_PRIVATE_URLS",
                     "F5TTS_MODEL_CONFIG", "F5TTS_CKPT_FILE", "F5TTS_VOCAB_FILE",
                     "VOCODER_LOCAL_PATH", "DEVICE", "LAZY_INSTALL", "MAX_TEXT_CHARS",
                     "MAX_UPLOAD_BYTES", "ASR_MODEL")


@pytest.fixture
def clean_env(monkeypatch):
    for name in _WORKER_ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DEVICE", "cpu")
    return monkeypatch


@pytest.fixture
def local_worker(clean_env, local_env):
    return Worker(clean_env, local_env)


@pytest.fixture
def s3_worker(clean_env, s3_env):
    return Worker(clean_env, s3_env)


@pytest.fixture
def http_files():
    """A local HTTP server: ``serve(path, body)`` and ``redirect(path, to)``; yields it."""
    import http.server
    import threading

    routes = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            status, headers, body = routes.get(self.path, (404, {}, b"missing"))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    class Files:
        base = f"http://127.0.0.1:{server.server_address[1]}"

        def serve(self, path, body, status=200, headers=None):
            routes[path] = (status, headers or {}, body)
            return self.base + path

        def redirect(self, path, to, status=302):
            routes[path] = (status, {"Location": to}, b"")
            return self.base + path

    try:
        yield Files()
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict:
    """Env selecting a tiny F5-TTS checkpoint and vocos folder, built once a session."""
    from tests.tiny_models import tiny_model_env

    return tiny_model_env(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture
def tts_worker(clean_env, local_env, tiny_models):
    return Worker(clean_env, {**local_env, **tiny_models})


@pytest.fixture
def s3_tts_worker(clean_env, s3_env, tiny_models):
    return Worker(clean_env, {**s3_env, **tiny_models})


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_local_api(env: dict, log_path: Path):
    """``python handler.py --rp_serve_api`` on a free port with ``env`` (added to
    this process's environment); returns (process, base URL) once it answers."""
    import subprocess
    import time

    import requests

    port = _free_port()
    full = {**os.environ, **env}
    for name in ("S3_BUCKET", "AWS_ENDPOINT_URL", "DEFAULT_VOICE", "RUNPOD_WEBHOOK_GET_JOB"):
        if name not in env:
            full.pop(name, None)
    with open(log_path, "wb") as log_file:
        server = subprocess.Popen(
            [sys.executable, "handler.py", "--rp_serve_api", "--rp_api_host", "127.0.0.1",
             "--rp_api_port", str(port)], cwd=ROOT, env=full, stdout=log_file,
            stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            requests.get(base + "/docs", timeout=2)
            return server, base
        except requests.ConnectionError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise RuntimeError("local API did not start:\n"
                                   + log_path.read_text()) from None
            time.sleep(0.3)


def stop_local_api(server) -> None:
    import subprocess

    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()


@pytest.fixture
def local_api(tmp_path, tiny_models):
    """The SDK's local API with local storage and the tiny models; yields
    (base_url, env, log_path). The server is stopped afterwards."""
    env = {**tiny_models, "STORAGE_BACKEND": "local", "DEVICE": "cpu",
           "LOCAL_STORAGE_DIR": str(tmp_path / "storage"), "LAZY_INSTALL": "off"}
    log_path = tmp_path / "server.log"
    server, base = start_local_api(env, log_path)
    try:
        yield base, {**os.environ, **env}, log_path
    finally:
        stop_local_api(server)
