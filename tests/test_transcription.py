"""Reference transcription through the real handler and the real transformers
ASR pipeline, with a tiny Whisper folder whose output is known (tests/tiny_asr.py)."""
from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import soundfile

from settings import load_settings
from tests.conftest import REFERENCE_TEXT
from tests.tiny_asr import TRANSCRIPT, build_asr_model
from worker.inference import transcriber

TTS = {"seed": 1, "nfe_step": 4}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def asr_model(tmp_path, monkeypatch):
    """A fresh tiny Whisper folder as ASR_MODEL (fresh, so its first use loads it);
    its pipeline leaves the model cache afterwards."""
    folder = str(build_asr_model(tmp_path / "tiny-whisper"))
    monkeypatch.setenv("ASR_MODEL", folder)
    try:
        yield folder
    finally:
        for key in [key for key in transcriber._PIPELINES if folder in key]:
            transcriber._PIPELINES.pop(key, None)


@pytest.fixture
def asr_loads(monkeypatch):
    """Counts real loads of an ASR pipeline (each call goes through to the real loader)."""
    loads = []
    real = transcriber._load_asr

    def counted(model_id, device):
        loads.append(model_id)
        return real(model_id, device)

    monkeypatch.setattr(transcriber, "_load_asr", counted)
    return loads


def test_transcribe_returns_the_models_text(asr_model, reference_wav):
    samples, rate = soundfile.read(io.BytesIO(reference_wav), dtype="float32")
    settings = load_settings({"ASR_MODEL": asr_model, "DEVICE": "cpu"})
    assert transcriber.transcribe(settings, samples, rate) == TRANSCRIPT
    # Another rate and length go through the same resampling and padding path.
    half = samples[::2].astype(np.float32)
    assert transcriber.transcribe(settings, half, rate // 2) == TRANSCRIPT


def test_voice_without_transcript_is_transcribed_once(tts_worker, asr_model, asr_loads,
                                                      reference_wav):
    upload = {"action": "upload", "voice_name": "plain", "voice_base64": b64(reference_wav)}
    assert tts_worker(upload)["has_ref_text"] is False
    assert tts_worker.storage.get_json("voices/plain/voice.json")["ref_text"] is None

    first = tts_worker({**TTS, "text": "One.", "voice": "plain"})
    assert "error" not in first, first
    assert first["ref_text_source"] == "transcribed"
    # Kept beside the audio it transcribes (voice.json stays the upload's own).
    from worker.services import voices
    assert voices.load(tts_worker.storage, "plain").ref_text == TRANSCRIPT
    listed = tts_worker({"action": "list_voices"})["voices"]
    assert [v["has_ref_text"] for v in listed] == [True]

    second = tts_worker({**TTS, "text": "Two.", "voice": "plain"})
    assert second["ref_text_source"] == "voice"

    # Another voice needs the ASR model again: it comes from the model cache.
    tts_worker({**upload, "voice_name": "other"})
    third = tts_worker({**TTS, "text": "Three.", "voice": "other"})
    assert third["ref_text_source"] == "transcribed"
    assert asr_loads == [asr_model]


def test_cut_upload_stores_the_transcript_of_the_cut_clip(tts_worker, asr_model,
                                                          long_reference_wav):
    out = tts_worker({"action": "upload", "voice_name": "long", "ref_text": REFERENCE_TEXT,
                      "voice_base64": b64(long_reference_wav)})
    assert "error" not in out, out
    assert out["duration"] <= 12.0 < out["original_duration"]
    assert out["has_ref_text"] is True
    # The supplied text described all 17 s; the stored one is the ASR's, of the cut clip.
    assert tts_worker.storage.get_json("voices/long/voice.json")["ref_text"] == TRANSCRIPT
    job = tts_worker({**TTS, "text": "Hello.", "voice": "long"})
    assert "error" not in job, job
    assert job["ref_text_source"] == "voice"


def test_unloadable_asr_model_keeps_the_upload_and_fails_the_job(tts_worker, tmp_path,
                                                                 monkeypatch,
                                                                 long_reference_wav):
    # An existing folder without a model: transformers fails on it without the network.
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    monkeypatch.setenv("ASR_MODEL", str(empty))
    out = tts_worker({"action": "upload", "voice_name": "deaf", "ref_text": REFERENCE_TEXT,
                      "voice_base64": b64(long_reference_wav)})
    assert "error" not in out, out
    assert out["has_ref_text"] is False
    assert tts_worker.storage.get_json("voices/deaf/voice.json")["ref_text"] is None

    failed = tts_worker({**TTS, "text": "Hello.", "voice": "deaf"}, job_id="deaf-job")
    assert failed["error"].startswith("model_error:"), failed
    assert str(empty) in failed["error"] and "pass ref_text" in failed["error"]
    status = tts_worker({"action": "status", "job_id": "deaf-job"})
    assert status["status"] == "FAILED" and status["error"] == failed["error"]
    assert tts_worker.storage.get_json("voices/deaf/voice.json")["ref_text"] is None

    # The remedy the message names works: the same voice with ref_text.
    fixed = tts_worker({**TTS, "text": "Hello.", "voice": "deaf", "ref_text": REFERENCE_TEXT})
    assert "error" not in fixed, fixed
    assert fixed["ref_text_source"] == "request"
