"""Streaming and concurrent jobs, served the ways RunPod serves them.

Streaming through the SDK's local API (`/stream` there answers once, with
every part: their content is checked here, their timing is the benchmark's);
concurrency in the SDK's own job loop against a local stand-in for RunPod's
queue (the local API ignores `concurrency_modifier`).
"""
from __future__ import annotations

import io
import os
import time

import numpy as np
import pytest
import requests
import soundfile

from tests.conftest import start_local_api, stop_local_api
from tests.job_queue import JobQueue, start_worker, stop
from tests.test_voices import fetch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LONG = " ".join(f"Part {word} of a story told in several chunks, one after another."
                for word in ("one", "two", "three", "four", "five"))


def pcm(url: str) -> np.ndarray:
    data, rate = soundfile.read(io.BytesIO(fetch(url)), dtype="int16")
    assert rate == 24000
    return data


@pytest.fixture
def streaming_api(tmp_path, tiny_models):
    env = {**tiny_models, "STORAGE_BACKEND": "local", "DEVICE": "cpu",
           "LOCAL_STORAGE_DIR": str(tmp_path / "storage"), "LAZY_INSTALL": "off",
           "STREAMING": "true"}
    server, base = start_local_api(env, tmp_path / "api.log")
    try:
        yield base, env
    finally:
        stop_local_api(server)


@pytest.mark.slow
def test_streamed_parts_join_exactly_into_the_final_audio(streaming_api, tts_worker):
    base, _ = streaming_api
    job = {"input": {"text": LONG, "seed": 21, "nfe_step": 4, "stream": True}}
    queued = requests.post(f"{base}/run", json=job, timeout=30).json()
    streamed = requests.post(f"{base}/stream/{queued['id']}", timeout=600).json()
    assert streamed["status"] == "COMPLETED", streamed
    outputs = [item["output"] for item in streamed["stream"]]
    *parts, final = outputs
    assert len(parts) >= 2 and [p["part"] for p in parts] == list(range(len(parts)))
    joined = np.concatenate([pcm(part["audio_url"]) for part in parts])
    np.testing.assert_array_equal(joined, pcm(final["audio_url"]))
    for before, after in zip(parts, parts[1:]):
        assert before["end"] == after["start"]
    assert " ".join(part["text"] for part in parts) == LONG
    assert all(part["audio_key"].startswith(f"jobs/{queued['id']}/parts/") for part in parts)
    # The same plan and audio as without streaming (that worker does not stream).
    plain = tts_worker({"text": LONG, "seed": 21, "nfe_step": 4})
    np.testing.assert_array_equal(pcm(plain["audio_url"]), pcm(final["audio_url"]))
    # The record and result are the normal output's.
    assert requests.post(f"{base}/runsync", json={"input": {
        "action": "result", "job_id": queued["id"]}}, timeout=60).json()["output"][-1][
        "audio_key"] == final["audio_key"]


def test_on_a_streaming_worker_other_jobs_are_one_element(streaming_api):
    base, _ = streaming_api
    out = requests.post(f"{base}/runsync", json={"input": {"action": "list_voices"}},
                        timeout=60).json()
    assert out["status"] == "COMPLETED" and out["output"] == [{"voices": [], "count": 0}]
    bad = requests.post(f"{base}/runsync", json={"input": {"text": "x", "speed": 9}},
                        timeout=60).json()
    # RunPod's job loop fails a job whose stream ends in an error (the broken-GPU
    # test below sees it); the SDK's local API shows that last element as output.
    assert bad["output"][-1]["error"].startswith("invalid_input: speed"), bad


@pytest.mark.parametrize("extra, fragment", [
    ({}, "this worker does not stream"),
    ({"loudness": -16}, "not together with loudness"),
])
def test_stream_where_it_cannot_be(tts_worker, monkeypatch, extra, fragment):
    if extra:
        monkeypatch.setenv("STREAMING", "true")
    out = tts_worker({"text": "Hello.", "stream": True, **extra})
    assert out["error"].startswith("invalid_input:") and fragment in out["error"], out


@pytest.mark.slow
def test_a_broken_gpu_mid_stream_fails_the_job_and_the_worker_exits(tts_worker, tmp_path):
    """The SDK ignores refresh_worker from a generator: the worker writes its
    records, ends the stream with the error, and stops itself. (The broken
    CUDA state is injected: tests/faults.)"""
    env = {**tts_worker.env, "STREAMING": "true", "F5_TEST_FAULT": "cuda-on-batch-2",
           "PYTHONPATH": os.path.join(ROOT, "tests", "faults")}
    with JobQueue() as queue:
        queue.put("broken-1", {"text": LONG, "seed": 3, "nfe_step": 4, "stream": True})
        process = start_worker(queue, env, tmp_path / "worker.log")
        try:
            code = process.wait(timeout=300)
        finally:
            if process.poll() is None:
                process.kill()
        log = (tmp_path / "worker.log").read_text()
        assert code == 0, log[-3000:]
        assert queue.results["broken-1"]["error"].startswith("model_error: the GPU failed")
        assert len(queue.parts["broken-1"]) == 1          # the first chunk's part went out
    status = tts_worker({"action": "status", "job_id": "broken-1"})
    assert status["status"] == "FAILED" and status["error"].startswith("model_error")


@pytest.mark.slow
def test_four_jobs_at_once_are_each_the_bytes_of_the_job_alone(tts_worker, tmp_path,
                                                                  monkeypatch):
    jobs = {f"many-{n}": {"text": text, "seed": 100 + n, "nfe_step": 4}
            for n, text in enumerate([LONG, "A short one.", "Another line, a bit longer.",
                                      "Fourth."])}
    jobs["many-s"] = {"action": "script", "nfe_step": 4,
                      "segments": [{"text": "Script line one."}, {"text": "And two."}]}
    env = {**tts_worker.env, "MAX_CONCURRENT_JOBS": "4"}
    with JobQueue() as queue:
        for job_id, payload in jobs.items():
            queue.put(job_id, payload)
        process = start_worker(queue, env, tmp_path / "worker.log")
        try:
            queue.wait_for(lambda: len(queue.results) == len(jobs), timeout=600)
        finally:
            stop(process)
    together = {job_id: result["output"] for job_id, result in queue.results.items()}
    monkeypatch.setenv("LOCAL_STORAGE_DIR", str(tmp_path / "alone"))
    for job_id, payload in jobs.items():
        alone = tts_worker(payload, job_id=job_id)
        assert pcm(alone["audio_url"]).tobytes() == pcm(together[job_id]["audio_url"]).tobytes(), \
            job_id


@pytest.mark.slow
def test_a_light_action_is_answered_while_a_long_job_runs(tts_worker, tmp_path):
    with JobQueue() as queue:
        queue.put("long-1", {"text": LONG * 2, "seed": 1, "nfe_step": 8})
        process = start_worker(queue, tts_worker.env, tmp_path / "worker.log")
        try:
            # Once the long job is generating, ask for its status through the same worker.
            queue.wait_for(lambda: "long-1" in queue.taken, timeout=120)
            deadline = time.monotonic() + 240
            while (tts_worker.storage.get_json("jobs/long-1/job.json") or {}).get(
                    "stage") != "generating":
                assert time.monotonic() < deadline
                time.sleep(0.1)
            queue.put("status-1", {"action": "status", "job_id": "long-1"})
            queue.wait_for(lambda: "status-1" in queue.results, timeout=120)
            answered_first = "long-1" not in queue.results
            queue.wait_for(lambda: "long-1" in queue.results, timeout=600)
        finally:
            stop(process)
    assert answered_first
    assert queue.results["status-1"]["output"]["status"] == "IN_PROGRESS"
    assert queue.results["long-1"]["output"]["status"] == "COMPLETED"


def test_the_scheduler_shares_batches_between_jobs_and_sends_a_first_chunk_alone():
    import threading

    from worker.inference.scheduler import Scheduler

    class Plan:
        def __init__(self, name, frames=10):
            self.text, self.frames = name, frames

    batches, gate, entered = [], threading.Event(), threading.Event()

    def run(plans, steps):
        entered.set()
        gate.wait(timeout=30)
        batches.append([plan.text for plan in plans])
        return [plan.text.upper() for plan in plans]

    scheduler = Scheduler(run, lambda: (4, 1000))
    # A job already running holds the model until the gate opens, so the three
    # below wait together, as jobs arriving during a batch do.
    running = scheduler.submit([Plan("z0")], 4)
    assert entered.wait(timeout=30)
    first = scheduler.submit([Plan("a0"), Plan("a1"), Plan("a2")], 4, first_alone=True)
    second = scheduler.submit([Plan("b0"), Plan("b1")], 4)
    other_steps = scheduler.submit([Plan("c0")], 8)
    gate.set()
    assert [wave for group in scheduler.results(first) for wave in group] == [0, 1, 2]
    list(scheduler.results(second))
    list(scheduler.results(other_steps))
    list(scheduler.results(running))
    assert first.waves == ["A0", "A1", "A2"] and other_steps.waves == ["C0"]
    # a0 goes without a1 and a2, with the other job's chunks; steps never mix.
    assert batches == [["z0"], ["a0", "b0", "b1"], ["a1", "a2"], ["c0"]]


class _Plan:
    def __init__(self, name, frames=10):
        self.text, self.frames = name, frames


def test_a_job_that_stops_leaves_the_others_in_its_batches_whole():
    import threading

    from worker.inference.scheduler import Scheduler

    gate, entered = threading.Event(), threading.Event()

    def run(plans, steps):
        entered.set()
        gate.wait(timeout=30)
        return [plan.text.upper() for plan in plans]

    scheduler = Scheduler(run, lambda: (2, 1000))
    blocker = scheduler.submit([_Plan("z0")], 4)
    assert entered.wait(timeout=30)
    quitter = scheduler.submit([_Plan("q0"), _Plan("q1"), _Plan("q2")], 4)
    stayer = scheduler.submit([_Plan("s0"), _Plan("s1"), _Plan("s2")], 4)

    def stopping():
        raise RuntimeError("this job's worker is stopping")

    gate.set()
    with pytest.raises(RuntimeError):
        for _ in scheduler.results(quitter, check=stopping):
            pass
    list(scheduler.results(blocker))
    list(scheduler.results(stayer))
    assert stayer.waves == ["S0", "S1", "S2"]
    assert None in quitter.waves   # its later plans were dropped, not run


def test_a_broken_batch_fails_every_job_it_touched_with_refresh_worker():
    import threading

    from worker.core.errors import MODEL_ERROR, WorkerError
    from worker.inference.scheduler import Scheduler

    gate, entered = threading.Event(), threading.Event()

    def run(plans, steps):
        entered.set()
        gate.wait(timeout=30)
        if any(plan.text == "b0" for plan in plans):
            raise WorkerError(MODEL_ERROR, "the GPU failed", refresh_worker=True)
        return [plan.text for plan in plans]

    scheduler = Scheduler(run, lambda: (4, 1000))
    blocker = scheduler.submit([_Plan("z0")], 4)
    assert entered.wait(timeout=30)
    first = scheduler.submit([_Plan("a0")], 4)
    second = scheduler.submit([_Plan("b0")], 4)
    later = scheduler.submit([_Plan("c0")], 8)    # another step count: another batch
    gate.set()
    for ticket in (first, second):
        with pytest.raises(WorkerError) as failed:
            list(scheduler.results(ticket))
        assert failed.value.refresh_worker
    list(scheduler.results(blocker))
    assert [group for group in scheduler.results(later)] == [[0]] and later.waves == ["c0"]
