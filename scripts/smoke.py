"""Smoke test for a deployed worker: one tts job, end to end.

Sends a ``tts`` job to ``/run``, polls ``/status/<id>`` with a progress line
until it ends, then downloads the audio and the timing file and checks that
the audio is what was asked for. Works against a RunPod endpoint and against
the SDK's local API (``python handler.py --rp_serve_api``)::

    RUNPOD_API_KEY=... RUNPOD_ENDPOINT_ID=... python scripts/smoke.py
    python scripts/smoke.py --base-url http://127.0.0.1:8000 --out smoke-out

Exit status: 0 when the files arrived and look right, 1 when the job failed,
timed out or returned something unusable, 2 for a usage error. The last line
on stdout is a JSON summary. Needs only the standard library and requests.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional
from urllib.parse import urlparse
from urllib.request import url2pathname

import requests

log = logging.getLogger("smoke")

RUNPOD_API = "https://api.runpod.ai/v2"
TERMINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT")
# First bytes of each output format, so a broken encoder is caught here.
MAGIC = {"wav": (b"RIFF",), "flac": (b"fLaC",), "ogg": (b"OggS",),
         "mp3": (b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2")}
TRANSIENT = (500, 502, 503, 504)


class SmokeError(Exception):
    """The endpoint or the job did not do what a working worker does."""


@dataclass
class SmokeResult:
    job_id: str
    status: str
    seconds: float
    audio_file: str
    audio_bytes: int
    timing_file: Optional[str]
    duration: Optional[float]
    seed: Optional[int]


def endpoint_url(endpoint_id: Optional[str] = None, base_url: Optional[str] = None) -> str:
    """The base that /run and /status/<id> hang off."""
    if base_url:
        return base_url.rstrip("/")
    if endpoint_id:
        return f"{RUNPOD_API}/{endpoint_id}"
    raise SmokeError("give --base-url, or --endpoint-id (or RUNPOD_ENDPOINT_ID)")


def build_input(args: argparse.Namespace) -> dict:
    job = {"text": args.text, "seed": args.seed, "output_format": args.output_format}
    if args.nfe_step is not None:
        job["nfe_step"] = args.nfe_step
    if args.voice:
        job["voice"] = args.voice
    if args.timing_format:
        job.update(return_word_timings=True, timing_format=args.timing_format)
    return job


class Endpoint:
    """/run and /status over HTTP, with the RunPod key when there is one."""

    def __init__(self, base: str, api_key: Optional[str], request_timeout: float):
        self.base = base
        self.session = requests.Session()
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"
        self.timeout = request_timeout
        # RunPod answers GET /status; the SDK's local API only POST.
        self.status_method = "GET"

    def submit(self, job_input: dict) -> str:
        response = self._request("POST", "/run", json={"input": job_input})
        job_id = response.get("id")
        if not job_id:
            raise SmokeError(f"/run returned no job id: {response}")
        return job_id

    def status(self, job_id: str) -> dict:
        try:
            return self._request(self.status_method, f"/status/{job_id}")
        except MethodNotAllowed:
            self.status_method = "POST"
            return self._request("POST", f"/status/{job_id}")

    def _request(self, method: str, path: str, **kwargs) -> dict:
        for attempt in range(4):
            try:
                response = self.session.request(method, self.base + path,
                                                timeout=self.timeout, **kwargs)
            except requests.ConnectionError as exc:
                error = f"cannot reach {self.base}: {exc}"
            else:
                if response.status_code == 405:
                    raise MethodNotAllowed(path)
                if response.status_code not in TRANSIENT:
                    return _json_body(response, method, path)
                error = f"{method} {path}: HTTP {response.status_code}"
            log.warning("%s (attempt %d of 4)", error, attempt + 1)
            time.sleep(2 ** attempt)
        raise SmokeError(error)


class MethodNotAllowed(Exception):
    pass


def _json_body(response: requests.Response, method: str, path: str) -> dict:
    if response.status_code in (401, 403):
        raise SmokeError(f"{method} {path}: HTTP {response.status_code}; check RUNPOD_API_KEY")
    if response.status_code >= 400:
        raise SmokeError(f"{method} {path}: HTTP {response.status_code}: "
                         f"{response.text[:300]}")
    try:
        return response.json()
    except ValueError:
        raise SmokeError(f"{method} {path}: not JSON: {response.text[:300]}") from None


def wait(endpoint: Endpoint, job_id: str, timeout: float, interval: float,
         clock: Callable[[], float] = time.monotonic) -> dict:
    """Poll until the job ends; log one progress line per poll."""
    started = clock()
    while True:
        body = endpoint.status(job_id)
        state = body.get("status", "?")
        elapsed = clock() - started
        log.info("[%6.1f s] job %s: %s%s", elapsed, job_id, state, _timings(body))
        if state in TERMINAL:
            return body
        if elapsed > timeout:
            raise SmokeError(f"job {job_id} still {state} after {timeout:.0f} s")
        time.sleep(interval)


def _timings(body: dict) -> str:
    parts = [f"{name} {body[key] / 1000:.1f} s" for key, name in
             (("delayTime", "queued"), ("executionTime", "ran")) if body.get(key)]
    return f" ({', '.join(parts)})" if parts else ""


def download(url: str, dest: Path, session: Optional[requests.Session] = None) -> int:
    """Save a presigned http(s) URL or a local API's file:// URL; return the size."""
    parsed = urlparse(url)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if parsed.scheme == "file":
        shutil.copyfile(url2pathname(parsed.path), dest)
        return dest.stat().st_size
    if parsed.scheme not in ("http", "https"):
        raise SmokeError(f"cannot download a {parsed.scheme or 'schemeless'} URL")
    # A presigned URL carries its own credentials: never send the RunPod key.
    getter = session or requests
    with getter.get(url, stream=True, timeout=120) as response:
        if response.status_code != 200:
            raise SmokeError(f"downloading {parsed.path}: HTTP {response.status_code}")
        with open(dest, "wb") as handle:
            for block in response.iter_content(1 << 20):
                handle.write(block)
    return dest.stat().st_size


def check_audio(path: Path, fmt: str) -> None:
    head = path.read_bytes()[:4]
    if not any(head.startswith(magic) for magic in MAGIC.get(fmt, (b"",))):
        raise SmokeError(f"{path} does not start like a {fmt} file (first bytes {head!r})")
    if path.stat().st_size < 1024:
        raise SmokeError(f"{path} is only {path.stat().st_size} bytes")


def fetch_outputs(output: dict, job_id: str, out_dir: Path, want_timing: bool) -> tuple:
    """Download and check the job's files; return (audio path, size, timing path)."""
    if not output.get("audio_url"):
        raise SmokeError(f"the output has no audio_url: {sorted(output)}")
    fmt = output.get("audio_format", "wav")
    audio = out_dir / f"{job_id}.{fmt}"
    size = download(output["audio_url"], audio)
    check_audio(audio, fmt)
    timing = None
    if want_timing:
        if not output.get("timing_url"):
            raise SmokeError("timings were asked for, but the output has no timing_url")
        timing = out_dir / f"{job_id}.timings.{output.get('timing_format', 'txt')}"
        if download(output["timing_url"], timing) == 0:
            raise SmokeError(f"{timing} is empty")
    return audio, size, timing


def run(args: argparse.Namespace) -> SmokeResult:
    endpoint = Endpoint(endpoint_url(args.endpoint_id, args.base_url), args.api_key,
                        args.request_timeout)
    started = time.monotonic()
    job_id = endpoint.submit(build_input(args))
    log.info("submitted job %s to %s", job_id, endpoint.base)
    final = wait(endpoint, job_id, args.timeout, args.poll_interval)
    if final.get("status") != "COMPLETED":
        raise SmokeError(f"job {job_id} ended {final.get('status')}: "
                         f"{final.get('error') or final.get('output')}")
    output = final.get("output") or {}
    audio, size, timing = fetch_outputs(output, job_id, Path(args.out),
                                        bool(args.timing_format))
    log.info("audio: %s (%d bytes)%s", audio, size, f"; timings: {timing}" if timing else "")
    return SmokeResult(job_id, "COMPLETED", round(time.monotonic() - started, 2), str(audio),
                       size, str(timing) if timing else None, output.get("duration"),
                       output.get("seed"))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--endpoint-id", default=os.environ.get("RUNPOD_ENDPOINT_ID"),
                        help="RunPod endpoint id (default: $RUNPOD_ENDPOINT_ID)")
    target.add_argument("--base-url", help="a base URL instead, e.g. the local API's "
                        "http://127.0.0.1:8000")
    parser.add_argument("--api-key", default=os.environ.get("RUNPOD_API_KEY"),
                        help="RunPod API key (default: $RUNPOD_API_KEY)")
    parser.add_argument("--text", default="This is a smoke test of the F5-TTS worker.")
    parser.add_argument("--voice", help="a stored voice (default: the worker's default voice)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--nfe-step", type=int, help="fewer steps: faster, rougher audio")
    parser.add_argument("--output-format", default="wav", choices=sorted(MAGIC))
    parser.add_argument("--timing-format", default="srt",
                        help="timing file to ask for (srt, vtt, csv, json, ass); "
                        "'' for none")
    parser.add_argument("--out", default="smoke-out", help="folder for the downloaded files")
    parser.add_argument("--timeout", type=float, default=900,
                        help="seconds to wait for the job (a cold start downloads models)")
    parser.add_argument("--poll-interval", type=float, default=3.0)
    parser.add_argument("--request-timeout", type=float, default=600,
                        help="seconds per HTTP request (the local API runs the job "
                        "inside /status)")
    args = parser.parse_args(argv)
    if args.base_url:
        args.endpoint_id = None
    if not args.base_url and not args.endpoint_id:
        parser.error("give --base-url, or --endpoint-id (or RUNPOD_ENDPOINT_ID)")
    if args.endpoint_id and not args.api_key:
        parser.error("a RunPod endpoint needs --api-key (or RUNPOD_API_KEY)")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        result = run(args)
    except SmokeError as exc:
        log.error("smoke test failed: %s", exc)
        sys.stdout.write(json.dumps({"status": "FAILED", "error": str(exc)}) + "\n")
        return 1
    sys.stdout.write(json.dumps(asdict(result)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
