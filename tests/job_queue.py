"""A small stand-in for RunPod's job queue, for the SDK's own job loop.

RunPod's queue cannot exist here, so this serves the four URLs the SDK's
worker loop talks to (RUNPOD_WEBHOOK_GET_JOB and the job-stop channel derived
from it, RUNPOD_WEBHOOK_POST_OUTPUT, RUNPOD_WEBHOOK_POST_STREAM) over real
HTTP on 127.0.0.1, and records what the worker sends: results, streamed parts
and progress updates, as RunPod would receive them. ``python handler.py``
pointed at it runs the SDK's real loop (runpod.serverless.worker.run_worker).
"""
from __future__ import annotations

import collections
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
WORKER_ID = "test-worker"


class JobQueue:
    """Jobs go in with ``put``; ``results``, ``parts`` and ``progress`` fill as
    the worker answers. ``taken`` lists job ids in the order the worker took them."""

    def __init__(self):
        self.pending = collections.deque()
        self.results: dict = {}
        self.parts = collections.defaultdict(list)
        self.progress = collections.defaultdict(list)
        self.taken: list = []
        self._changed = threading.Condition()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def env(self) -> dict:
        """The environment RunPod gives a worker, pointed here."""
        return {
            "RUNPOD_WEBHOOK_GET_JOB": f"{self.base}/job-take/$ID?gpu=test",
            "RUNPOD_WEBHOOK_POST_OUTPUT": f"{self.base}/job-done/$RUNPOD_POD_ID/$ID?gpu=test",
            "RUNPOD_WEBHOOK_POST_STREAM": f"{self.base}/job-stream/$RUNPOD_POD_ID/$ID?gpu=test",
            "RUNPOD_POD_ID": WORKER_ID,
            # The SDK's start-up probes need a GPU and the internet.
            "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",
            "RUNPOD_SKIP_GPU_CHECK": "true",
        }

    def put(self, job_id: str, payload: dict) -> None:
        with self._changed:
            self.pending.append({"id": job_id, "input": payload})

    def wait_for(self, predicate, timeout: float = 300.0):
        """Block until ``predicate()`` is true (checked whenever the worker sends something)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("the worker did not get there in time")
                self._changed.wait(min(left, 0.5))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()

    def _record(self, path: str, body: bytes) -> None:
        kind, _, job_id = urlparse(path).path.strip("/").split("/")[:3]
        data = json.loads(body.decode("utf-8"))
        with self._changed:
            if kind == "job-stream":
                self.parts[job_id].append(data)
            elif data.get("status") == "IN_PROGRESS":
                self.progress[job_id].append(data.get("output"))
            else:
                self.results[job_id] = data
            self._changed.notify_all()

    def _take(self):
        with self._changed:
            if not self.pending:
                return None
            job = self.pending.popleft()
            self.taken.append(job["id"])
            self._changed.notify_all()
            return job

    def _handler(self):
        queue = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the stdlib's name
                if "/job-stop/" in self.path:
                    time.sleep(1.0)   # RunPod long-polls this channel
                    return self._answer(204)
                job = queue._take()
                if job is None:
                    time.sleep(0.2)
                    return self._answer(204)
                return self._answer(200, json.dumps(job).encode())

            def do_POST(self):  # noqa: N802 - the stdlib's name
                length = int(self.headers.get("Content-Length") or 0)
                queue._record(self.path, self.rfile.read(length))
                self._answer(200, b"{}")

            def _answer(self, status: int, body: bytes = b""):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        return Handler


def start_worker(queue: JobQueue, env: dict, log_path: Path) -> subprocess.Popen:
    """``python handler.py`` in the SDK's real job loop, against ``queue``."""
    full = {**os.environ, **env, **queue.env()}
    for name in ("RUNPOD_AI_API_KEY", "RUNPOD_WEBHOOK_PING"):
        full.pop(name, None)   # no pings to RunPod
    with open(log_path, "wb") as log_file:
        return subprocess.Popen([sys.executable, "handler.py"], cwd=ROOT, env=full,
                                stdout=log_file, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen, timeout: float = 60.0) -> int:
    """SIGTERM, as RunPod stops a worker; the exit status once it has exited."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise
