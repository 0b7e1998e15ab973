"""tts through the real handler with the tiny F5-TTS model on the CPU."""
from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile

from tests.conftest import REFERENCE_TEXT
from tests.test_voices import fetch
from worker.inference import synthesis

ROOT = Path(__file__).resolve().parents[1]
# Long enough for several chunks of the package's ~22 s chunking rule.
LONG_TEXT = " ".join(
    f"Sentence number {word} tells a small story about the sea, the wind and the light."
    for word in ("one", "two", "three", "four", "five", "six", "seven", "eight"))


def audio_of(worker, out) -> bytes:
    assert "error" not in out, out
    return worker.storage.get_bytes(out["audio_key"])


def test_same_seed_same_bytes_other_seed_differs(tts_worker):
    job = {"text": "Hello there, this is a test.", "seed": 7, "nfe_step": 4}
    first, second = tts_worker(job), tts_worker(job)
    other = tts_worker({**job, "seed": 8})
    assert first["seed"] == second["seed"] == 7 and other["seed"] == 8
    assert audio_of(tts_worker, first) == audio_of(tts_worker, second)
    assert audio_of(tts_worker, first) != audio_of(tts_worker, other)


def test_multi_chunk_text_is_reproducible(tts_worker):
    chunks = synthesis.chunks_for(LONG_TEXT, REFERENCE_TEXT, 5.33).chunks
    assert len(chunks) >= 3  # the case this test is about
    job = {"text": LONG_TEXT, "seed": 123, "nfe_step": 4}
    first, second = tts_worker(job), tts_worker(job)
    assert audio_of(tts_worker, first) == audio_of(tts_worker, second)
    other = tts_worker({**job, "seed": 124})
    assert audio_of(tts_worker, first) != audio_of(tts_worker, other)


def test_random_seed_is_returned_and_reproduces(tts_worker):
    out = tts_worker({"text": "Pick a seed for me.", "nfe_step": 4})
    assert 0 <= out["seed"] <= 2**31 - 1
    again = tts_worker({"text": "Pick a seed for me.", "nfe_step": 4, "seed": out["seed"]})
    assert audio_of(tts_worker, out) == audio_of(tts_worker, again)


@pytest.mark.parametrize("fmt,container", [("wav", "WAV"), ("mp3", "MP3"), ("flac", "FLAC"),
                                           ("ogg", "OGG")])
def test_output_formats(tts_worker, fmt, container):
    out = tts_worker({"text": "Formats.", "seed": 1, "nfe_step": 4, "output_format": fmt.upper()})
    assert out["audio_format"] == fmt and out["audio_key"].endswith(f".{fmt}")
    info = soundfile.info(io.BytesIO(audio_of(tts_worker, out)))
    assert info.format == container and info.samplerate == 24000
    assert info.duration == pytest.approx(out["duration"], abs=0.1)


def test_result_fields_and_metrics(tts_worker):
    out = tts_worker({"text": "Metrics please.", "seed": 3, "nfe_step": 4, "speed": 1.2,
                      "cfg_strength": 1.5})
    for field in ("job_id", "status", "audio_url", "audio_key", "audio_format", "duration",
                  "sample_rate", "seed", "voice", "ref_text_source", "url_expires_in", "metrics"):
        assert field in out, field
    assert out["status"] == "COMPLETED" and out["voice"] == "default"
    assert out["ref_text_source"] == "voice" and out["url_expires_in"] == 3600
    metrics = out["metrics"]
    stages = ("model_load", "reference", "inference", "timing", "upload")
    assert all(metrics[stage] >= 0 for stage in stages)
    assert sum(metrics[stage] for stage in stages) <= metrics["total"] + 1e-3
    assert metrics["rtf"] == pytest.approx(metrics["inference"] / out["duration"], rel=0.01)
    assert fetch(out["audio_url"]) == audio_of(tts_worker, out)


def test_remove_silence_keeps_a_valid_file(tts_worker):
    out = tts_worker({"text": "Quiet parts go.", "seed": 3, "nfe_step": 4,
                      "remove_silence": True})
    assert "error" not in out, out
    assert out["duration"] > 0


def test_stored_voice_with_transcript_and_request_ref_text(tts_worker, reference_wav):
    upload = {"action": "upload", "voice_name": "narrator", "ref_text": REFERENCE_TEXT,
              "voice_base64": base64.b64encode(reference_wav).decode()}
    assert "error" not in tts_worker(upload)
    by_voice = tts_worker({"text": "Stored voice.", "voice": "narrator.wav", "seed": 2,
                           "nfe_step": 4})
    assert by_voice["voice"] == "narrator" and by_voice["ref_text_source"] == "voice"
    by_request = tts_worker({"text": "Stored voice.", "local_voice": "narrator", "seed": 2,
                             "nfe_step": 4, "ref_text": "Some call me nature."})
    assert by_request["ref_text_source"] == "request"
    assert audio_of(tts_worker, by_voice) != audio_of(tts_worker, by_request)


def test_missing_voice_is_not_found_and_leaves_a_failed_record(tts_worker):
    out = tts_worker({"text": "Nobody.", "voice": "ghost", "nfe_step": 4}, job_id="ghost-job")
    assert out["error"].startswith("not_found:") and "ghost" in out["error"]
    status = tts_worker({"action": "status", "job_id": "ghost-job"})
    assert status["status"] == "FAILED" and status["error"] == out["error"]
    result = tts_worker({"action": "result", "job_id": "ghost-job"})
    assert result["error"].startswith("job_failed:") and "ghost" in result["error"]


def test_voice_url_is_used_for_one_job(tts_worker, http_files, reference_wav, monkeypatch):
    monkeypatch.setenv("ALLOW_PRIVATE_URLS", "true")
    url = http_files.serve("/ref.wav", reference_wav)
    out = tts_worker({"text": "From a URL.", "voice_url": url, "ref_text": REFERENCE_TEXT,
                      "seed": 4, "nfe_step": 4})
    assert "error" not in out, out
    assert out["voice"] == "voice_url" and out["ref_text_source"] == "request"
    assert [info.key for info in tts_worker.storage.list("voices/")] == []


def test_generation_failure_leaves_failed_record_and_no_objects(tts_worker, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("simulated numerical blow-up")

    monkeypatch.setattr(synthesis, "generate", broken)
    out = tts_worker({"text": "This will fail.", "seed": 1, "nfe_step": 4}, job_id="boom")
    assert out["error"].startswith("internal_error:")
    assert "Traceback" not in out["error"]
    record = tts_worker.storage.get_json("jobs/boom/job.json")
    assert record["status"] == "FAILED" and record["error"] == out["error"]
    assert [info.key for info in tts_worker.storage.list("jobs/boom/")] == ["jobs/boom/job.json"]


def test_a_failed_write_after_the_audio_takes_the_audio_back(tts_worker, monkeypatch):
    from worker.core.errors import WorkerError
    from worker.services import jobs

    real_put = jobs.JobTracker.put

    def put(self, key, data):
        if "/timings." in key:
            raise WorkerError("storage_error", "writing the timing file failed (simulated)")
        real_put(self, key, data)

    monkeypatch.setattr(jobs.JobTracker, "put", put)
    out = tts_worker({"text": "Half way.", "seed": 1, "nfe_step": 4,
                      "return_word_timings": True, "timing_method": "auto"}, job_id="half")
    assert out["error"].startswith("storage_error:")
    keys = [info.key for info in tts_worker.storage.list("jobs/half/")]
    assert keys == ["jobs/half/job.json"]
    assert tts_worker.storage.get_json("jobs/half/job.json")["status"] == "FAILED"


def test_rerun_of_a_completed_job_returns_the_same_record(tts_worker):
    job = {"text": "Only once.", "seed": 9, "nfe_step": 4}
    first = tts_worker(job, job_id="dup")
    record = tts_worker.storage.get_json("jobs/dup/job.json")
    second = tts_worker({**job, "seed": 10}, job_id="dup")
    assert second["seed"] == 9 and second["audio_key"] == first["audio_key"]
    assert tts_worker.storage.get_json("jobs/dup/job.json") == record


def test_rerun_of_an_interrupted_job_starts_clean(tts_worker):
    storage = tts_worker.storage
    storage.put_json("jobs/cut/job.json", {"job_id": "cut", "status": "IN_PROGRESS",
                                            "stage": "uploading", "attempt": 1,
                                            "created_at": "2026-01-01T00:00:00.000Z"})
    storage.put_bytes("jobs/cut/audio.mp3", b"half-written")
    out = tts_worker({"text": "Again.", "seed": 1, "nfe_step": 4}, job_id="cut")
    assert "error" not in out
    keys = sorted(info.key for info in storage.list("jobs/cut/"))
    assert keys == ["jobs/cut/audio.wav", "jobs/cut/job.json"]
    record = storage.get_json("jobs/cut/job.json")
    assert record["attempt"] == 2 and record["created_at"] == "2026-01-01T00:00:00.000Z"
    assert record["status"] == "COMPLETED"


def test_result_and_download_of_a_finished_job(s3_tts_worker):
    import requests

    out = s3_tts_worker({"text": "Bucket.", "seed": 5, "nfe_step": 4}, job_id="s3job")
    assert "X-Amz-Signature" in out["audio_url"]
    assert requests.get(out["audio_url"], timeout=10).content == audio_of(s3_tts_worker, out)
    again = s3_tts_worker({"action": "result", "job_id": "s3job"})
    assert again["audio_key"] == out["audio_key"] and again["seed"] == 5
    link = s3_tts_worker({"action": "download", "job_id": "s3job", "type": "AUDIO",
                          "expires_in": 600})
    assert link["key"] == "jobs/s3job/audio.wav" and link["content_type"] == "audio/wav"
    assert "X-Amz-Expires=600" in link["url"]
    assert requests.get(link["url"], timeout=10).content == audio_of(s3_tts_worker, out)
    no_timing = s3_tts_worker({"action": "download", "job_id": "s3job", "file": "timing"})
    assert no_timing["error"].startswith("not_found:")


def _handler_in_fresh_process(env: dict, payload: dict) -> dict:
    code = ("import json, sys, handler; "
            "print(json.dumps(handler.handler({'id': 'probe', 'input': json.loads(sys.argv[1])})))")
    done = subprocess.run([sys.executable, "-c", code, json.dumps(payload)], cwd=ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_status_during_and_after_a_job_from_another_process(tts_worker):
    """The job runs in its own process (handler.py --test_input); this process
    reads its record without any shared memory."""
    env = {**os.environ, **tts_worker.env, "DEVICE": "cpu", "LAZY_INSTALL": "off"}
    job = {"id": "watched", "input": {"text": LONG_TEXT, "seed": 1, "nfe_step": 4}}
    runner = subprocess.Popen([sys.executable, "handler.py", "--test_input", json.dumps(job)],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    seen, results_while_running = set(), 0
    try:
        deadline = time.monotonic() + 240
        while runner.poll() is None and time.monotonic() < deadline:
            status = tts_worker({"action": "status", "job_id": "watched"})
            if "error" not in status:
                seen.add((status["status"], status.get("stage")))
                if status["status"] == "IN_PROGRESS":
                    running = tts_worker({"action": "result", "job_id": "watched"})
                    # The job may complete between the two reads: then result
                    # must be the finished output, never a half-written one.
                    if running["status"] == "IN_PROGRESS":
                        assert running == {"job_id": "watched", "status": "IN_PROGRESS"}
                        results_while_running += 1
                    else:
                        assert running["status"] == "COMPLETED" and running["seed"] == 1
            time.sleep(0.05)
        _, stderr = runner.communicate(timeout=60)
    finally:
        runner.kill()
    assert runner.returncode == 0, stderr[-2000:]
    assert any(state == "IN_PROGRESS" for state, _ in seen), seen
    assert results_while_running > 0
    stages = {stage for state, stage in seen if state == "IN_PROGRESS"}
    assert stages & {"loading_model", "reference", "generating", "uploading"}
    final = _handler_in_fresh_process(tts_worker.env, {"action": "status", "job_id": "watched"})
    assert final["status"] == "COMPLETED" and "stage" not in final
    result = _handler_in_fresh_process(tts_worker.env, {"action": "result", "job_id": "watched"})
    assert result["seed"] == 1 and result["audio_url"].startswith("file://")
    assert len(fetch(result["audio_url"])) > 1000


def test_a_redelivered_job_without_seed_repeats_its_take(tts_worker):
    """Two deliveries of one job (RunPod retries) write the same bytes, so the
    record and the stored audio agree whichever run writes last."""
    job = {"text": "Again and again.", "nfe_step": 4}
    first = tts_worker(job, job_id="redelivered")
    audio = audio_of(tts_worker, first)
    record = tts_worker.storage.get_json("jobs/redelivered/job.json")
    tts_worker.storage.put_json("jobs/redelivered/job.json",
                                {**record, "status": "IN_PROGRESS", "result": None})
    second = tts_worker(job, job_id="redelivered")
    assert second["seed"] == first["seed"]
    assert audio_of(tts_worker, second) == audio
    other = tts_worker(job, job_id="another-job")
    assert other["seed"] != first["seed"]
