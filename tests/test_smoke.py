"""scripts/smoke.py against the SDK's real local API, and its pieces on their own."""
from __future__ import annotations

import http.server
import importlib.util
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "smoke.py"


def load_smoke():
    spec = importlib.util.spec_from_file_location("smoke", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class is built.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def run_smoke(*args, timeout=600):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


@pytest.fixture
def tiny_aligner(tmp_path, monkeypatch):
    """ALIGN_MODEL and NLTK_DATA in os.environ before local_api copies it, so the
    server's WhisperX aligns with a tiny local model instead of downloading one."""
    from tests.tiny_align import build_align_model, build_punkt

    monkeypatch.setenv("ALIGN_MODEL", str(build_align_model(tmp_path / "wav2vec2")))
    monkeypatch.setenv("NLTK_DATA", str(build_punkt(tmp_path / "nltk_data")))


@pytest.mark.slow
def test_smoke_script_against_the_local_api(tiny_aligner, local_api, tmp_path):
    base, _, _ = local_api
    out = tmp_path / "out"
    done = run_smoke("--base-url", base, "--out", str(out), "--nfe-step", "4",
                     "--timing-format", "srt", "--poll-interval", "0.2", "--timeout", "300")
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["status"] == "COMPLETED" and summary["seed"] == 42
    audio, timing = Path(summary["audio_file"]), Path(summary["timing_file"])
    assert audio.parent == out and audio.read_bytes()[:4] == b"RIFF"
    assert audio.stat().st_size == summary["audio_bytes"] > 10_000
    assert timing.name == f"{summary['job_id']}.timings.srt" and "-->" in timing.read_text()
    # The progress lines: one per poll, ending with the final state.
    progress = [line for line in done.stderr.splitlines() if f"job {summary['job_id']}:" in line]
    assert progress and "COMPLETED" in progress[-1]

    failed = run_smoke("--base-url", base, "--out", str(out), "--voice", "nobody",
                       "--nfe-step", "4", "--poll-interval", "0.2", "--timeout", "300")
    assert failed.returncode == 1
    result = json.loads(failed.stdout.strip().splitlines()[-1])
    assert result["status"] == "FAILED" and "not_found: voice nobody" in result["error"]


class FakeRunPod:
    """Stands in for api.runpod.ai, which cannot be reached from here: /run, GET
    /status (queued once, then done) and the presigned file, recording headers."""

    def __init__(self):
        self.seen = []
        self.polls = 0
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _reply(self, status, body, kind="application/json"):
                fake.seen.append((self.command, self.path, self.headers.get("Authorization")))
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):  # noqa: N802 - the stdlib's name
                self.rfile.read(int(self.headers["Content-Length"]))
                self._reply(200, b'{"id": "job-1", "status": "IN_QUEUE"}')

            def do_GET(self):  # noqa: N802 - the stdlib's name
                if self.path.startswith("/files/"):
                    wav = self.path.split("?")[0].endswith(".wav")
                    body = b"RIFF" + bytes(4096) if wav else b"1\n"
                    return self._reply(200, body, "application/octet-stream")
                fake.polls += 1
                if fake.polls == 1:
                    return self._reply(200, b'{"id": "job-1", "status": "IN_QUEUE"}')
                files = f"http://127.0.0.1:{fake.port}/files/job-1"
                output = {"audio_url": f"{files}.wav?X-Amz-Signature=abc", "audio_format": "wav",
                          "timing_url": f"{files}.srt", "timing_format": "srt",
                          "duration": 1.0, "seed": 42}
                body = {"id": "job-1", "status": "COMPLETED", "delayTime": 1500,
                        "executionTime": 2500, "output": output}
                self._reply(200, json.dumps(body).encode())

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_runpod_key_goes_to_the_api_but_never_to_presigned_urls(tmp_path):
    fake = FakeRunPod()
    try:
        smoke = load_smoke()
        args = smoke.parse_args(["--base-url", f"http://127.0.0.1:{fake.port}", "--api-key",
                                 "rp-secret", "--out", str(tmp_path), "--poll-interval", "0"])
        result = smoke.run(args)
    finally:
        fake.server.shutdown()
        fake.server.server_close()
    assert result.status == "COMPLETED" and result.audio_bytes == 4100
    api = [entry for entry in fake.seen if not entry[1].startswith("/files/")]
    files = [entry for entry in fake.seen if entry[1].startswith("/files/")]
    assert [entry[:2] for entry in api] == [("POST", "/run"), ("GET", "/status/job-1"),
                                            ("GET", "/status/job-1")]
    assert all(entry[2] == "Bearer rp-secret" for entry in api)
    assert len(files) == 2 and all(entry[2] is None for entry in files)


def test_download_reads_http_and_file_urls(http_files, tmp_path):
    smoke = load_smoke()
    url = http_files.serve("/a.wav", b"RIFF" + b"x" * 2000)
    assert smoke.download(url, tmp_path / "a.wav") == 2004
    local = tmp_path / "local file.wav"
    local.write_bytes(b"RIFFdata")
    assert smoke.download(local.as_uri(), tmp_path / "copy.wav") == 8
    assert (tmp_path / "copy.wav").read_bytes() == b"RIFFdata"
    with pytest.raises(smoke.SmokeError, match="HTTP 404"):
        smoke.download(http_files.base + "/missing", tmp_path / "m.wav")
    with pytest.raises(smoke.SmokeError, match="ftp"):
        smoke.download("ftp://example.com/a.wav", tmp_path / "f.wav")


def test_audio_check_catches_wrong_bytes(tmp_path):
    smoke = load_smoke()
    good, bad = tmp_path / "good.flac", tmp_path / "bad.mp3"
    good.write_bytes(b"fLaC" + bytes(2000))
    bad.write_bytes(b"<html>" + bytes(2000))
    smoke.check_audio(good, "flac")
    with pytest.raises(smoke.SmokeError, match="mp3"):
        smoke.check_audio(bad, "mp3")


def test_usage_errors_exit_2():
    assert run_smoke("--api-key", "x", timeout=60).returncode == 2   # no endpoint
    missing_key = run_smoke("--endpoint-id", "abc123", timeout=60)
    assert missing_key.returncode == 2 and "RUNPOD_API_KEY" in missing_key.stderr
    assert load_smoke().endpoint_url("abc123") == "https://api.runpod.ai/v2/abc123"
