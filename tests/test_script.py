"""The `script` action through the handler with the tiny models: one track of
many lines, retakes that cost one line, crash resume, loudness, progress."""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile

from tests.test_voices import fetch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RATE = 24000
THREE = [{"text": "The first line opens the scene."},
         {"text": "Then a pause, [pause:1s] and the second line goes on.", "pause_after": 1.5},
         {"text": "A dubbed slot.", "duration": 2.0}]


def script(worker, segments, job_id=None, **extra):
    job = {"action": "script", "segments": segments, "nfe_step": 4, **extra}
    return worker(job, job_id=job_id)


def at(track: np.ndarray, piece: np.ndarray, seconds: float):
    """The sample where ``piece`` lies in ``track`` exactly, near ``seconds``
    (outputs give times to the millisecond), or None."""
    near = int(round(seconds * RATE))
    for start in range(max(0, near - 30), near + 31):
        if np.array_equal(track[start:start + len(piece)], piece):
            return start
    return None


def samples(url: str) -> np.ndarray:
    data, rate = soundfile.read(io.BytesIO(fetch(url)), dtype="float32")
    assert rate == RATE
    return data


@pytest.fixture
def model_calls(monkeypatch):
    """Plans (chunks) that went through the model, counted at the sampler."""
    from worker.inference import synthesis

    calls = []
    real = synthesis.sample_batch

    def counting(loaded, ref, plans, steps, cfg_strength):
        calls.extend(plan.text for plan in plans)
        return real(loaded, ref, plans, steps, cfg_strength)

    monkeypatch.setattr(synthesis, "sample_batch", counting)
    return calls


def test_three_segments_with_pauses_and_a_target_duration(tts_worker):
    out = script(tts_worker, THREE, return_word_timings=True, timing_method="google",
                 timing_format="json", timing_inline=True, segment_files=True)
    assert out["status"] == "COMPLETED", out
    first, second, third = out["segments"]
    assert [s["index"] for s in out["segments"]] == [0, 1, 2]
    assert third["duration"] == pytest.approx(2.0, abs=1 / RATE)
    assert second["start"] == pytest.approx(first["end"] + 0.4, abs=2 / RATE)
    assert third["start"] == pytest.approx(second["end"] + 1.5, abs=2 / RATE)
    assert out["duration"] == pytest.approx(third["end"], abs=2 / RATE)
    track = samples(out["audio_url"])
    # Each segment file is exactly its stretch of the track; the pauses are silence.
    for segment in out["segments"]:
        piece = samples(segment["audio_url"])
        assert at(track, piece, segment["start"]) is not None
    gap = track[int(second["end"] * RATE) + 2:int(third["start"] * RATE) - 2]
    assert not gap.any()
    # Every word of every segment once, in order, on the track's clock.
    words = [w["word"] for w in out["word_timings"]]
    assert words == " ".join(s["text"] for s in THREE).replace("[pause:1s] ", "").split()
    starts = [w["start_time"] for w in out["word_timings"]]
    assert starts == sorted(starts)
    third_words = out["word_timings"][-3:]
    assert all(third["start"] - 1e-3 <= w["start_time"] <= third["end"] + 1e-3
               for w in third_words)
    assert all(s["reused"] is False for s in out["segments"])
    assert "[pause:1s]" in second["spoken_text"]


def test_resubmitting_reuses_every_segment_byte_for_byte(tts_worker, model_calls):
    first = script(tts_worker, THREE)
    generated = len(model_calls)
    again = script(tts_worker, THREE)
    assert len(model_calls) == generated   # nothing went through the model
    assert [s["reused"] for s in again["segments"]] == [True, True, True]
    assert fetch(again["audio_url"]) == fetch(first["audio_url"])
    assert [s["seed"] for s in again["segments"]] == [s["seed"] for s in first["segments"]]


def test_a_retake_with_a_new_seed_generates_that_segment_only(tts_worker, model_calls):
    first = script(tts_worker, THREE, segment_files=True)
    del model_calls[:]
    retake = [dict(THREE[0]), {**THREE[1], "seed": 4242}, dict(THREE[2])]
    second = script(tts_worker, retake, segment_files=True)
    assert [s["reused"] for s in second["segments"]] == [True, False, True]
    assert second["segments"][1]["seed"] == 4242
    assert model_calls == ["Then a pause,", "and the second line goes on."]   # its two chunks
    for index in (0, 2):
        assert fetch(second["segments"][index]["audio_url"]) == \
            fetch(first["segments"][index]["audio_url"])
    assert fetch(second["segments"][1]["audio_url"]) != fetch(first["segments"][1]["audio_url"])


def test_editing_one_line_of_200_generates_that_line_only(tts_worker, model_calls):
    lines = [{"text": f"Line {n} of the chapter.", "pause_after": 0.2} for n in range(200)]
    first = script(tts_worker, lines)
    assert first["status"] == "COMPLETED", first
    assert len(model_calls) == 200
    del model_calls[:]
    edited = [dict(line) for line in lines]
    edited[117] = {"text": "Line one hundred seventeen, said again.", "pause_after": 0.2}
    second = script(tts_worker, edited)
    assert model_calls == ["Line one hundred seventeen, said again."]
    assert [s["index"] for s in second["segments"] if not s["reused"]] == [117]
    old, new = samples(first["audio_url"]), samples(second["audio_url"])
    # The track around the edit is the same samples: before it, and (shifted) after it.
    cut = int(round(first["segments"][117]["start"] * RATE)) - 30
    np.testing.assert_array_equal(old[:cut], new[:cut])
    rest = old[int(round(first["segments"][118]["start"] * RATE)) + 30:]
    assert at(new, rest, second["segments"][118]["start"] + 30 / RATE) is not None


def test_loudness_of_the_track_measured_by_ffmpeg(tts_worker, tmp_path):
    out = script(tts_worker, THREE[:2], loudness=-16.0)
    path = tmp_path / "track.wav"
    path.write_bytes(fetch(out["audio_url"]))
    meter = subprocess.run(["ffmpeg", "-nostats", "-i", str(path), "-af", "ebur128=peak=true",
                            "-f", "null", "-"], capture_output=True, text=True, check=True)
    summary = meter.stderr[meter.stderr.rindex("Summary:"):]
    integrated = float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1))
    peak = float(re.search(r"Peak:\s+(-?[\d.]+) dBFS", summary).group(1))
    assert abs(integrated + 16.0) <= 1.0
    assert peak <= -1.0


def _record(storage_dir, job_id):
    path = os.path.join(storage_dir, "jobs", job_id, "job.json")
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (FileNotFoundError, ValueError):
        return None


@pytest.mark.slow
def test_a_killed_script_job_resumes_with_only_what_was_not_stored(
        tts_worker, tmp_path, model_calls, monkeypatch):
    """A real process, killed (SIGKILL) once some batches are stored; delivered
    again, the job generates only the rest, and its track is the bytes of an
    uninterrupted run (made in another bucket)."""
    lines = [{"text": f"Segment number {n} of a long script, said slowly."}
             for n in range(26)]
    job = {"id": "resume-1", "input": {"action": "script", "segments": lines, "nfe_step": 4}}
    storage_dir = tts_worker.env["LOCAL_STORAGE_DIR"]
    runner = subprocess.Popen([sys.executable, "handler.py", "--test_input", json.dumps(job)],
                              cwd=ROOT, env={**os.environ, **tts_worker.env},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 600
        while True:
            record = _record(storage_dir, "resume-1") or {}
            done = (record.get("progress") or {}).get("done", 0)
            if done >= 8:
                break
            assert runner.poll() is None, "the job ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        runner.kill()
        runner.wait(timeout=30)
    finally:
        if runner.poll() is None:
            runner.kill()
    record = _record(storage_dir, "resume-1")
    assert record["status"] == "IN_PROGRESS" and record["progress"]["done"] < 26
    stored = record["progress"]["done"]
    resumed = tts_worker(job["input"], job_id="resume-1")
    assert resumed["status"] == "COMPLETED", resumed
    assert sum(not s["reused"] for s in resumed["segments"]) == len(model_calls)
    assert len(model_calls) <= 26 - stored
    monkeypatch.setenv("LOCAL_STORAGE_DIR", str(tmp_path / "elsewhere"))
    uninterrupted = tts_worker(job["input"], job_id="resume-2")
    assert fetch(uninterrupted["audio_url"]) == fetch(resumed["audio_url"])


@pytest.mark.slow
def test_status_shows_progress_from_another_process(tts_worker):
    lines = [{"text": f"Progress line {n}, long enough to take a moment."} for n in range(20)]
    job = {"id": "progress-1", "input": {"action": "script", "segments": lines, "nfe_step": 4}}
    runner = subprocess.Popen([sys.executable, "handler.py", "--test_input", json.dumps(job)],
                              cwd=ROOT, env={**os.environ, **tts_worker.env},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen = []
    try:
        while runner.poll() is None:
            status = tts_worker({"action": "status", "job_id": "progress-1"})
            if status.get("progress"):
                seen.append(status["progress"]["done"])
            time.sleep(0.05)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 0
    assert any(0 < done < 20 for done in seen), seen
    assert seen == sorted(seen)
    final = tts_worker({"action": "status", "job_id": "progress-1"})
    assert final["status"] == "COMPLETED" and "progress" not in final


def test_a_failing_segment_names_its_index_and_keeps_the_stored_ones(tts_worker):
    good = script(tts_worker, [{"text": "A good line that stays."}])
    assert good["status"] == "COMPLETED"
    out = script(tts_worker, [{"text": "A good line that stays."},
                              {"text": "Who is this?", "voice": "nobody"}], job_id="fails-1")
    assert out["error"].startswith("not_found: segments[1]: voice nobody"), out
    status = tts_worker({"action": "status", "job_id": "fails-1"})
    assert status["status"] == "FAILED"
    again = script(tts_worker, [{"text": "A good line that stays."}])
    assert again["segments"][0]["reused"] is True


@pytest.mark.parametrize("payload, code, fragment", [
    ({"segments": []}, "invalid_input", "1 to 500 segments"),
    ({"segments": "text"}, "invalid_input", "segments"),
    ({"segments": [{"text": "a"}] * 501}, "invalid_input", "not 501"),
    ({"segments": [{"voice": "x"}]}, "invalid_input", "segments.0.text: required"),
    ({"segments": [{"text": "a", "pause_after": 11}]}, "invalid_input", "pause_after"),
    ({"segments": [{"text": "a", "pause_after": -1}]}, "invalid_input", "pause_after"),
    ({"segments": [{"text": "a", "duration": 0.2}]}, "invalid_input", "duration"),
    ({"segments": [{"text": "a", "duration": 21}]}, "invalid_input", "duration"),
    ({"segments": [{"text": "a [pause:1s] b", "duration": 3}]}, "invalid_input",
     "segments.0: a segment with a target duration"),
    ({"segments": [{"text": "a", "seed": -1}]}, "invalid_input", "seed"),
    ({"segments": [{"text": "a", "speed": 3}]}, "invalid_input", "speed"),
    ({"segments": [{"text": "a", "voice": "a", "voice_url": "https://x/y.wav"}]},
     "invalid_input", "either voice or voice_url"),
    ({"segments": [{"text": "a", "language": "not a code"}]}, "invalid_input", "language"),
    ({"segments": [{"text": "?!"}]}, "invalid_input", "nothing to say"),
    ({"segments": [{"text": "a [pause:99s]"}]}, "invalid_input", "pause"),
    ({"segments": [{"text": "a", "colour": "red"}]}, "invalid_input", "unknown field"),
    ({"segments": [{"text": "a"}], "segment_files": "yes"}, "invalid_input", "segment_files"),
    ({"segments": [{"text": "a"}], "loudness": -5}, "invalid_input", "loudness"),
    ({"segments": [{"text": "a"}], "pronunciations": {}}, "invalid_input", "pronunciations"),
    ({"segments": [{"text": "a"}], "subtitle": {"max_cps": 99}}, "invalid_input",
     "subtitle.max_cps"),
    ({"segments": [{"text": "a"}], "stream": True}, "invalid_input", "unknown field"),
])
def test_bad_script_input(tts_worker, payload, code, fragment):
    out = tts_worker({"action": "script", **payload}, job_id="script-bad")
    assert out["error"].startswith(f"{code}:"), out
    assert fragment in out["error"], out
    assert tts_worker.storage.get_json("jobs/script-bad/job.json") is None


def test_a_script_over_max_script_chars_is_refused_before_any_work(tts_worker, monkeypatch,
                                                                   model_calls):
    monkeypatch.setenv("MAX_SCRIPT_CHARS", "50")
    out = script(tts_worker, [{"text": "x" * 30}, {"text": "y" * 30}], job_id="too-long")
    assert out["error"].startswith("payload_too_large: the script has 60 characters")
    assert model_calls == [] and tts_worker.storage.get_json("jobs/too-long/job.json") is None


def test_a_target_duration_whose_text_does_not_fit_one_chunk(tts_worker):
    long_line = " ".join(["This sentence is long enough to need several chunks."] * 12)
    out = script(tts_worker, [{"text": long_line, "duration": 5}])
    assert out["error"].startswith("invalid_input: segments[0]: text does not fit one chunk")


@pytest.mark.slow
def test_a_script_through_the_local_api(local_api):
    import requests

    base, _, _ = local_api
    job = {"input": {"action": "script", "segments": THREE, "nfe_step": 4,
                     "segment_files": True}}
    done = requests.post(f"{base}/runsync", json=job, timeout=600).json()
    assert done["status"] == "COMPLETED", done
    output = done["output"]
    assert [s["index"] for s in output["segments"]] == [0, 1, 2]
    segment = requests.post(f"{base}/runsync", json={"input": {
        "action": "download", "job_id": output["job_id"], "file": "segment:2"}},
        timeout=60).json()["output"]
    assert segment["key"].endswith("segments/2.wav")
    missing = requests.post(f"{base}/runsync", json={"input": {
        "action": "download", "job_id": output["job_id"], "file": "segment:7"}},
        timeout=60).json()
    assert missing["status"] == "FAILED" and missing["error"].startswith("not_found:")


@pytest.mark.slow
def test_runpod_receives_the_same_progress_in_its_job_loop(tts_worker, tmp_path):
    """The SDK's own job loop against a local stand-in for RunPod's queue: the
    progress updates it posts are the numbers the record shows."""
    from tests.job_queue import JobQueue, start_worker, stop

    lines = [{"text": f"Line {n} for the progress updates."} for n in range(12)]
    with JobQueue() as queue:
        queue.put("loop-script", {"action": "script", "segments": lines, "nfe_step": 4})
        process = start_worker(queue, tts_worker.env, tmp_path / "worker.log")
        try:
            queue.wait_for(lambda: "loop-script" in queue.results, timeout=600)
            queue.wait_for(lambda: any(update and update.get("done") == 12
                                       for update in queue.progress["loop-script"]),
                           timeout=60)
        finally:
            stop(process)
        updates = [update for update in queue.progress["loop-script"] if update]
        assert all(update["total"] == 12 for update in updates)
        assert {update["done"] for update in updates} >= {0, 8, 12}
        assert queue.results["loop-script"]["output"]["segments"][11]["index"] == 11
