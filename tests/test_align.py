"""The `align` action through the handler and the local API: the caller's audio
(real espeak-ng speech with known word starts) and text in, timings out.

Timings come from the weightless fallback here (`timing_method: google`
without credentials falls through to it at once): the only aligner whose
times are not noise without trained weights.
"""
from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
import requests
import soundfile

from tests import espeak_speech
from tests.test_voices import fetch

pytestmark = pytest.mark.skipif(not espeak_speech.have_libespeak(),
                                reason="libespeak-ng is missing (scripts/system_packages.sh)")

TEXT = ("The harbour was quiet that morning, and the boats rocked gently. "
        "A gull cried twice, then the bells of the old church began to ring.")


def wav_bytes(samples: np.ndarray, rate: int, fmt: str = "WAV") -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format=fmt, subtype="PCM_16")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def spoken():
    return espeak_speech.continuous(TEXT, "en-us", 165, 45)


def align(worker, data: bytes, text: str = TEXT, **extra) -> dict:
    job = {"action": "align", "text": text, "audio_base64": base64.b64encode(data).decode(),
           "timing_method": "google", "timing_inline": True, **extra}
    return worker(job)


def mean_start_error(timings: list, speech) -> float:
    errors = [abs(timing["start_time"] - truth)
              for timing, truth in zip(timings, speech.starts) if truth is not None]
    return float(np.mean(errors))


def test_align_times_every_written_word_of_the_callers_recording(local_worker, spoken):
    out = align(local_worker, wav_bytes(spoken.audio, spoken.rate), timing_format="srt",
                subtitle_cues="phrase")
    assert out["status"] == "COMPLETED", out
    words = [timing["word"] for timing in out["word_timings"]]
    assert words == TEXT.split() and out["word_count"] == len(words)
    assert out["duration"] == pytest.approx(len(spoken.audio) / spoken.rate, abs=0.01)
    assert out["timing_method"] == "estimate" and out["timing_fallback_reason"]
    assert mean_start_error(out["word_timings"], spoken) < 0.15
    assert "audio_url" not in out and "audio_key" not in out
    srt = fetch(out["timing_url"]).decode("utf-8")
    assert "harbour" in srt and " --> " in srt


def test_align_job_has_a_record_like_tts(local_worker, spoken):
    out = local_worker({"action": "align", "text": TEXT, "timing_method": "google",
                        "timing_format": "vtt",
                        "audio_base64": base64.b64encode(wav_bytes(spoken.audio,
                                                                   spoken.rate)).decode()},
                       job_id="align-record")
    assert out["status"] == "COMPLETED", out
    status = local_worker({"action": "status", "job_id": "align-record"})
    assert status["status"] == "COMPLETED"
    again = local_worker({"action": "result", "job_id": "align-record"})
    assert again["timing_url"] and again["timing_key"] == out["timing_key"]
    timing = local_worker({"action": "download", "job_id": "align-record", "file": "timing"})
    assert timing["key"].endswith("timings.vtt") and timing["size_bytes"] > 0
    missing = local_worker({"action": "download", "job_id": "align-record", "file": "audio"})
    assert missing["error"].startswith("not_found:")


def test_align_takes_audio_by_url_and_in_other_formats(local_worker, spoken, http_files,
                                                       monkeypatch):
    monkeypatch.setenv("ALLOW_PRIVATE_URLS", "true")
    url = http_files.serve("/take.flac", wav_bytes(spoken.audio, spoken.rate, "FLAC"))
    out = local_worker({"action": "align", "text": TEXT, "audio_url": url,
                        "timing_method": "google", "timing_format": "json"})
    assert out["status"] == "COMPLETED", out
    document = json.loads(fetch(out["timing_url"]))
    assert [word["word"] for word in document["words"]] == TEXT.split()
    assert document["cues"]


def test_align_reads_numbers_as_said_and_lists_them_as_written(local_worker):
    speech = espeak_speech.continuous("It costs forty five dollars today.", "en", 160, 50)
    out = align(local_worker, wav_bytes(speech.audio, speech.rate), text="It costs $45 today.")
    assert [timing["word"] for timing in out["word_timings"]] == ["It", "costs", "$45", "today."]


def test_long_recordings_do_not_drift(local_worker, http_files, monkeypatch):
    """Ten minutes of running speech: aligned in pieces, the last minutes are as
    close to the truth as the first."""
    monkeypatch.setenv("ALLOW_PRIVATE_URLS", "true")
    speech = espeak_speech.long_speech(600, "en+m3", 170, 45, seed=11)
    text = " ".join(speech.words)
    url = http_files.serve("/long.wav", wav_bytes(speech.audio, speech.rate))
    out = local_worker({"action": "align", "text": text, "audio_url": url,
                        "timing_method": "google", "timing_inline": True})
    assert out["status"] == "COMPLETED", out
    timings = out["word_timings"]
    assert [timing["word"] for timing in timings] == speech.words
    starts = np.array([np.nan if s is None else s for s in speech.starts])
    errors = np.abs(np.array([timing["start_time"] for timing in timings]) - starts)
    first = np.nanmean(errors[starts < 120])
    last = np.nanmean(errors[starts > starts[~np.isnan(starts)].max() - 120])
    assert first < 0.2 and last < 0.2
    assert last < 2 * first + 0.05


@pytest.mark.parametrize("payload, code, fragment", [
    ({"text": TEXT}, "invalid_input", "exactly one of audio_url or audio_base64"),
    ({"text": TEXT, "audio_url": "https://example.com/a.wav", "audio_base64": "AAAA"},
     "invalid_input", "exactly one"),
    ({"text": "Wait [pause:1s] here.", "audio_base64": "AAAA"}, "invalid_input",
     "pause tags are not accepted"),
    ({"text": "?!", "audio_base64": "AAAA"}, "invalid_input", "text"),
    ({"text": TEXT, "audio_base64": "not base64!!"}, "invalid_input", "audio_base64"),
    ({"text": TEXT, "audio_base64": base64.b64encode(b"RIFF0000WAVEjunk").decode()},
     "unsupported_media", ""),
    ({"text": TEXT, "audio_url": "http://127.0.0.1:9/a.wav"}, "forbidden_url", ""),
    ({"text": TEXT, "audio_url": "file:///etc/passwd"}, "forbidden_url", ""),
    ({"text": TEXT, "audio_base64": "AAAA", "stream": True}, "invalid_input", "stream"),
    ({"text": TEXT, "audio_base64": "AAAA", "subtitle": {"max_lines": 9}}, "invalid_input",
     "subtitle.max_lines"),
])
def test_bad_align_input(local_worker, payload, code, fragment):
    out = local_worker({"action": "align", **payload}, job_id="align-bad")
    assert out["error"].startswith(f"{code}:"), out
    assert fragment in out["error"]
    record = local_worker.storage.get_json("jobs/align-bad/job.json")
    assert record is None or record["status"] == "FAILED"
    leftovers = [info.key for info in local_worker.storage.list("jobs/align-bad/")
                 if not info.key.endswith("job.json")]
    assert leftovers == []


def test_audio_outside_the_accepted_length(local_worker, spoken, monkeypatch):
    short = spoken.audio[: int(0.3 * spoken.rate)]
    out = align(local_worker, wav_bytes(short, spoken.rate))
    assert out["error"].startswith("unsupported_media: the audio lasts 0.30 s")
    monkeypatch.setenv("MAX_ALIGN_SECONDS", "2")
    out = align(local_worker, wav_bytes(spoken.audio, spoken.rate))
    assert out["error"].startswith("unsupported_media: the audio lasts")
    monkeypatch.setenv("MAX_SCRIPT_CHARS", "20")
    out = align(local_worker, wav_bytes(spoken.audio, spoken.rate))
    assert out["error"].startswith("payload_too_large: text has")


@pytest.mark.slow
def test_align_through_the_local_api(local_api, spoken):
    base, _, _ = local_api
    job = {"input": {"action": "align", "text": TEXT, "timing_method": "google",
                     "audio_base64": base64.b64encode(wav_bytes(spoken.audio,
                                                                spoken.rate)).decode()}}
    done = requests.post(f"{base}/runsync", json=job, timeout=300).json()
    assert done["status"] == "COMPLETED", done
    assert done["output"]["word_count"] == len(TEXT.split())
    bad = requests.post(f"{base}/runsync", json={"input": {"action": "align", "text": TEXT}},
                        timeout=60).json()
    assert bad["status"] == "FAILED" and bad["error"].startswith("invalid_input:")
