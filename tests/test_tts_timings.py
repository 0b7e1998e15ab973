"""Word timings through the handler: one stored file of the requested format."""
from __future__ import annotations

import json

import pytest
import requests

from tests.test_voices import fetch
from tests.tiny_align import (
    Abort,
    SpeechServer,
    authorized_user_json,
    build_align_model,
    build_punkt,
    use_nltk_data,
)

TEXT = "The quick brown fox jumps over 2 lazy dogs & cats — again and again."


@pytest.fixture(scope="session")
def align_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("align")
    return build_align_model(root / "wav2vec2"), build_punkt(root / "nltk_data")


@pytest.fixture
def align_env(align_files, monkeypatch):
    model, nltk_root = align_files
    # NLTK reads NLTK_DATA once, at its first import: put the folder on its path too.
    use_nltk_data(nltk_root, monkeypatch)
    monkeypatch.setenv("ALIGN_MODEL", str(model))
    return {"ALIGN_MODEL": str(model), "NLTK_DATA": str(nltk_root)}


@pytest.fixture
def timing_worker(tts_worker, align_env):
    tts_worker.env.update(align_env)
    return tts_worker


def job_keys(worker, job_id):
    return sorted(info.key for info in worker.storage.list(f"jobs/{job_id}/"))


@pytest.mark.parametrize("fmt", ["srt", "vtt", "csv", "json", "ass"])
def test_each_format_stores_exactly_one_timing_file(timing_worker, fmt):
    job_id = f"timed-{fmt}"
    out = timing_worker({"text": TEXT, "seed": 2, "nfe_step": 4, "return_word_timings": True,
                         "timing_format": fmt.upper()}, job_id=job_id)
    assert "error" not in out, out
    assert job_keys(timing_worker, job_id) == sorted([
        f"jobs/{job_id}/audio.wav", f"jobs/{job_id}/job.json", f"jobs/{job_id}/timings.{fmt}"])
    assert out["timing_method"] == "whisperx" and out["timing_fallback_reason"] is None
    assert out["timing_format"] == fmt and out["language"] == "en"
    assert out["timing_key"] == f"jobs/{job_id}/timings.{fmt}"
    assert out["word_count"] == len(TEXT.split())
    assert out["timing_files"] == {fmt: out["timing_url"]}
    assert "word_timings" not in out
    body = fetch(out["timing_url"]).decode("utf-8")
    assert body == timing_worker.storage.get_bytes(out["timing_key"]).decode("utf-8")
    assert "jumps" in body


def test_inline_words_keep_every_word_in_order(timing_worker):
    out = timing_worker({"text": TEXT, "seed": 2, "nfe_step": 4, "return_word_timings": True,
                         "timing_format": "json", "timing_inline": True})
    words = out["word_timings"]
    assert [w["word"] for w in words] == TEXT.split()
    starts = [w["start_time"] for w in words]
    assert starts == sorted(starts)
    assert all(0 <= w["start_time"] <= w["end_time"] <= out["duration"] + 1e-6 for w in words)
    # A word with nothing to say cannot be aligned: placed between its
    # neighbours, no confidence; "&" is said ("and"), so it is aligned.
    assert next(w for w in words if w["word"] == "—")["confidence"] is None
    assert next(w for w in words if w["word"] == "&")["confidence"] is not None
    stored = json.loads(fetch(out["timing_url"]))
    assert [w["word"] for w in stored["words"]] == TEXT.split()


def test_s3_timing_url_is_presigned_and_serves_the_file(s3_tts_worker, align_env):
    out = s3_tts_worker({"text": TEXT, "seed": 2, "nfe_step": 4, "return_word_timings": True,
                         "timing_format": "vtt"}, job_id="s3-timed")
    response = requests.get(out["timing_url"], timeout=10)
    assert response.status_code == 200 and response.text.startswith("WEBVTT")
    again = s3_tts_worker({"action": "result", "job_id": "s3-timed"})
    assert requests.get(again["timing_url"], timeout=10).text == response.text
    link = s3_tts_worker({"action": "download", "job_id": "s3-timed", "file": "timing"})
    assert link["key"] == "jobs/s3-timed/timings.vtt" and link["content_type"] == "text/vtt"


def test_google_fallback_through_the_handler(tts_worker, monkeypatch):
    """whisperx cannot load its model here -> the real Google client is used
    against a local gRPC server that answers with real protobuf messages."""
    from google.cloud import speech

    def respond(request):
        words = [speech.WordInfo(word=w, start_time={"seconds": 0, "nanos": i * 100_000_000},
                                 end_time={"seconds": 0, "nanos": i * 100_000_000 + 90_000_000})
                 for i, w in enumerate(["the", "quick", "brown"])]
        alternative = speech.SpeechRecognitionAlternative(transcript="the quick brown",
                                                          words=words, confidence=0.9)
        return speech.RecognizeResponse(results=[speech.SpeechRecognitionResult(
            alternatives=[alternative])])

    monkeypatch.setenv("ALIGN_MODEL", "/nonexistent/align-model")
    monkeypatch.setenv("GOOGLE_CREDENTIALS_JSON", authorized_user_json())
    with SpeechServer(respond) as server:
        monkeypatch.setenv("GOOGLE_SPEECH_ENDPOINT", server.endpoint)
        out = tts_worker({"text": TEXT, "seed": 2, "nfe_step": 4, "return_word_timings": True,
                          "timing_inline": True, "timing_method": "auto"})
    assert out["timing_method"] == "google", out
    assert "whisperx" in out["timing_fallback_reason"]
    assert [w["word"] for w in out["word_timings"]] == TEXT.split()
    assert server.requests, "the Google server was never asked"


def test_estimate_when_nothing_else_works(tts_worker, monkeypatch):
    monkeypatch.setenv("ALIGN_MODEL", "/nonexistent/align-model")
    monkeypatch.delenv("GOOGLE_CREDENTIALS_JSON", raising=False)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    out = tts_worker({"text": TEXT, "seed": 2, "nfe_step": 4, "return_word_timings": True,
                      "timing_method": "google", "timing_format": "csv"})
    assert out["timing_method"] == "estimate"
    assert "google" in out["timing_fallback_reason"]
    body = fetch(out["timing_url"]).decode()
    assert body.splitlines()[0] == "word,start_time,end_time,confidence"
    assert len(body.splitlines()) == 1 + len(TEXT.split())


def test_google_error_status_falls_back_to_the_estimate(tts_worker, monkeypatch):
    import grpc

    monkeypatch.setenv("GOOGLE_CREDENTIALS_JSON", authorized_user_json())
    with SpeechServer(lambda request: Abort(grpc.StatusCode.UNAVAILABLE, "down")) as server:
        monkeypatch.setenv("GOOGLE_SPEECH_ENDPOINT", server.endpoint)
        out = tts_worker({"text": TEXT, "seed": 2, "nfe_step": 4, "return_word_timings": True,
                          "timing_method": "google"})
    assert out["timing_method"] == "estimate" and "google" in out["timing_fallback_reason"]
