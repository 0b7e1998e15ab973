"""Stopped workers lose nothing silently: a real worker process, a real signal.

SIGTERM in the middle of a job, in the SDK's own job loop (against a local
stand-in for RunPod's queue) and under the local API: the job's record ends
FAILED with a retryable message before the process exits, no object of the
run is left, and the job runs again when delivered again. A worker killed
outright (SIGKILL) cannot write anything: its record's heartbeat stops, and
`status` reports it stale.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests

from tests.job_queue import JobQueue, start_worker, stop

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Long enough (several chunks) that the signal arrives while it is generating.
LONG_TEXT = " ".join(f"This is sentence number {n} of a narration that takes a while."
                     for n in range(8))
LONG_JOB = {"text": LONG_TEXT, "seed": 3, "nfe_step": 8}


@pytest.fixture
def worker_env(tmp_path, tiny_models):
    return {**tiny_models, "STORAGE_BACKEND": "local", "DEVICE": "cpu",
            "LOCAL_STORAGE_DIR": str(tmp_path / "storage"), "LAZY_INSTALL": "off",
            "JOB_HEARTBEAT_SECONDS": "1", "JOB_STALE_SECONDS": "3",
            "MODEL_CACHE_DIR": str(tmp_path / "cache")}


def record(env: dict, job_id: str):
    path = os.path.join(env["LOCAL_STORAGE_DIR"], "jobs", job_id, "job.json")
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (FileNotFoundError, ValueError):   # not yet, or mid-rename
        return None


def wait_until(predicate, what: str, timeout: float = 240.0, process=None):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the worker exited before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def generating(env, job_id):
    current = record(env, job_id)
    return current if current and current.get("stage") == "generating" else None


def job_files(env: dict, job_id: str) -> list:
    folder = os.path.join(env["LOCAL_STORAGE_DIR"], "jobs", job_id)
    return sorted(name for name in os.listdir(folder) if not name.startswith("."))


def assert_stopped(env: dict, job_id: str) -> None:
    final = record(env, job_id)
    assert final["status"] == "FAILED", final
    assert final["retryable"] is True
    assert final["error"].startswith("internal_error: the worker stopped (SIGTERM)")
    assert job_files(env, job_id) == ["job.json"]   # nothing half-written is left


@pytest.mark.slow
def test_sigterm_in_the_sdk_job_loop_fails_the_job_retryably(worker_env, tmp_path):
    with JobQueue() as queue:
        queue.put("loop-1", LONG_JOB)
        process = start_worker(queue, worker_env, tmp_path / "worker.log")
        try:
            first = wait_until(lambda: generating(worker_env, "loop-1"), "generating",
                               process=process)
            # The heartbeat refreshes the record while the stage stays the same.
            wait_until(lambda: (record(worker_env, "loop-1") or {}).get("updated_at")
                       != first["updated_at"], "a heartbeat", process=process)
            code = stop(process)
        finally:
            if process.poll() is None:
                process.kill()
        log = (tmp_path / "worker.log").read_text()
        assert code == 0, log[-3000:]
        assert_stopped(worker_env, "loop-1")
        # RunPod was told the same, through the SDK's result channel.
        assert "the worker stopped (SIGTERM)" in queue.results["loop-1"]["error"]


@pytest.mark.slow
def test_sigterm_under_the_local_api_fails_the_job_before_exiting(worker_env, tmp_path):
    from tests.conftest import start_local_api

    server, base = start_local_api(worker_env, tmp_path / "api.log")
    answers = []
    try:
        sender = threading.Thread(target=lambda: answers.append(_runsync(base)), daemon=True)
        sender.start()
        wait_until(lambda: _api_job_generating(worker_env), "generating", process=server)
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=120)
        sender.join(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
    (job_id,) = os.listdir(os.path.join(worker_env["LOCAL_STORAGE_DIR"], "jobs"))
    assert_stopped(worker_env, job_id)
    if answers and answers[0] is not None:   # the server answered before it went
        assert answers[0]["status"] == "FAILED"
        assert "the worker stopped (SIGTERM)" in answers[0]["error"]


@pytest.mark.slow
def test_a_killed_worker_leaves_a_record_that_status_reports_stale(worker_env, tmp_path,
                                                                   monkeypatch):
    job = json.dumps({"id": "killed-1", "input": LONG_JOB})
    with open(tmp_path / "run.log", "wb") as log_file:
        runner = subprocess.Popen([sys.executable, "handler.py", "--test_input", job],
                                  cwd=ROOT, env={**os.environ, **worker_env},
                                  stdout=log_file, stderr=subprocess.STDOUT)
    for name, value in worker_env.items():
        monkeypatch.setenv(name, value)
    import handler

    try:
        wait_until(lambda: generating(worker_env, "killed-1"), "generating", process=runner)
        alive = handler.handler({"id": "s1", "input": {"action": "status",
                                                       "job_id": "killed-1"}})
        assert alive["status"] == "IN_PROGRESS" and "stale" not in alive
        runner.kill()   # SIGKILL: nothing can be written any more
        runner.wait(timeout=30)
    finally:
        if runner.poll() is None:
            runner.kill()

    def stale():
        answer = handler.handler({"id": "s2", "input": {"action": "status",
                                                        "job_id": "killed-1"}})
        return answer if answer.get("stale") else None

    answer = wait_until(stale, "the record to go stale", timeout=60)
    assert answer["status"] == "IN_PROGRESS" and answer["stage"] == "generating"


def test_a_job_started_after_the_stop_signal_fails_at_once_and_runs_when_sent_again(
        tts_worker):
    import handler
    from worker.core.stopping import StopSignal

    stopping = StopSignal()
    stopping.request()
    job = {"text": "Hello.", "nfe_step": 4, "seed": 1}
    out = handler.handler({"id": "late-1", "input": job}, stop=stopping)
    assert out["error"].startswith("internal_error: the worker stopped (SIGTERM)")
    status = tts_worker({"action": "status", "job_id": "late-1"})
    assert status["status"] == "FAILED" and status["retryable"] is True
    # RunPod delivers it again, to a worker that is not stopping: it runs.
    again = tts_worker(job, job_id="late-1")
    assert again["status"] == "COMPLETED", again
    assert tts_worker({"action": "status", "job_id": "late-1"})["status"] == "COMPLETED"


def _runsync(base: str):
    try:
        return requests.post(base + "/runsync", json={"input": LONG_JOB}, timeout=600).json()
    except (requests.RequestException, ValueError):
        return None   # the server went away before answering: the record tells


def _api_job_generating(env: dict):
    folder = os.path.join(env["LOCAL_STORAGE_DIR"], "jobs")
    if not os.path.isdir(folder):
        return None
    return any(generating(env, job_id) for job_id in os.listdir(folder))
