"""Voices through the real handler: upload, list, delete, download, legacy layout."""
from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
import requests
import soundfile

from tests.conftest import REFERENCE_TEXT


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def wav_bytes(samples, rate=24000, fmt="WAV", subtype="PCM_16") -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


@pytest.fixture(params=["local", "s3"])
def worker(request):
    return request.getfixturevalue(f"{request.param}_worker")


def test_upload_base64_then_list_download_delete(worker, reference_wav):
    out = worker({"action": "upload", "voice_name": "narrator", "ref_text": REFERENCE_TEXT,
                  "voice_base64": b64(reference_wav), "language": "en"})
    assert "error" not in out, out
    assert out["voice_name"] == "narrator" and out["has_ref_text"] is True
    assert out["duration"] == pytest.approx(5.33, abs=0.02)
    assert out["original_duration"] == pytest.approx(5.33, abs=0.02)
    assert out["sample_rate"] == 24000 and out["created_at"].endswith("Z")

    listed = worker({"action": "list_voices"})
    assert listed["count"] == 1
    voice = listed["voices"][0]
    assert voice["voice_name"] == "narrator" and voice["language"] == "en"
    assert voice["has_ref_text"] is True and voice["size_bytes"] > 100_000

    link = worker({"action": "download", "voice_name": "narrator", "expires_in": 120})
    # Each upload's audio has a key of its own; voice.json names it.
    assert re.fullmatch(r"voices/narrator/uploads/[^/]+/reference\.wav", link["key"]), link
    assert link["expires_in"] == 120
    assert link["content_type"] == "audio/wav"
    body = fetch(link["url"])
    assert len(body) == link["size_bytes"]
    samples, rate = soundfile.read(io.BytesIO(body))
    assert rate == 24000 and samples.ndim == 1

    assert worker({"action": "delete_voice", "voice_name": "narrator"}) == {
        "voice_name": "narrator", "deleted": True}
    assert worker({"action": "list_voices"}) == {"voices": [], "count": 0}
    assert list(worker.storage.list("voices/")) == []
    assert worker({"action": "delete_voice", "voice_name": "narrator"})["error"].startswith(
        "not_found:")


def fetch(url: str) -> bytes:
    if url.startswith("file://"):
        from urllib.parse import unquote, urlparse
        return open(unquote(urlparse(url).path), "rb").read()
    response = requests.get(url, timeout=10)
    response.raise_for_status()
    return response.content


def test_conflict_then_overwrite(local_worker, reference_wav):
    payload = {"action": "upload", "voice_name": "twice", "voice_base64": b64(reference_wav)}
    assert "error" not in local_worker(payload)
    assert local_worker(payload)["error"].startswith("conflict:")
    assert "error" not in local_worker({**payload, "overwrite": True})


def test_long_upload_is_cut_at_a_silence_and_drops_the_unmatched_transcript(
        local_worker, long_reference_wav, monkeypatch):
    # With an ASR model that cannot load, the cut clip's transcript is left for
    # the first tts job to make; the supplied one (for the full clip) is never kept.
    # tests/test_transcription.py covers the case where ASR works.
    monkeypatch.setenv("ASR_MODEL", "/nonexistent/asr")
    out = local_worker({"action": "upload", "voice_name": "long", "ref_text": "three takes",
                        "voice_base64": b64(long_reference_wav)})
    assert "error" not in out, out
    assert out["original_duration"] == pytest.approx(16.8, abs=0.1)
    assert 4.8 <= out["duration"] <= 12.0
    assert out["has_ref_text"] is False
    from worker.services import voices
    storage = local_worker.storage
    stored = storage.get_bytes(voices.stored_reference_key(storage, "long"))
    samples, rate = soundfile.read(io.BytesIO(stored), dtype="float32")
    # The cut lies in a pause: the last 10 ms are quiet, not mid-word.
    assert np.abs(samples[-int(0.01 * rate):]).max() < 0.05


def test_mp3_and_flac_and_ogg_are_accepted(local_worker, reference_wav):
    samples, rate = soundfile.read(io.BytesIO(reference_wav), dtype="float32")
    for fmt, subtype in (("FLAC", "PCM_16"), ("OGG", "VORBIS"), ("MP3", "MPEG_LAYER_III")):
        data = wav_bytes(samples, rate, fmt, subtype)
        out = local_worker({"action": "upload", "voice_name": f"v_{fmt.lower()}",
                            "voice_base64": b64(data)})
        assert "error" not in out, (fmt, out)
        assert out["duration"] == pytest.approx(5.33, abs=0.1)


@pytest.mark.parametrize("data,why", [
    (b"RIFF\x00\x00\x00\x00WAVEgarbage" * 10, "corrupt wav"),
    (b"\x00" * 5000, "not audio"),
    (b"#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:0\nhttp://169.254.169.254/x.ts\n", "playlist"),
    (b"ffconcat version 1.0\nfile /etc/passwd\n", "concat script"),
])
def test_hostile_or_corrupt_bytes_are_unsupported_media(local_worker, data, why):
    out = local_worker({"action": "upload", "voice_name": "bad", "voice_base64": b64(data)})
    assert out["error"].startswith("unsupported_media:"), (why, out)
    assert list(local_worker.storage.list("voices/")) == []


@pytest.mark.parametrize("seconds,amplitude,message", [
    (0.5, 0.3, "lasts"), (2.0, 0.0, "silent"), (301.0, 0.3, "lasts")])
def test_duration_and_silence_bounds(local_worker, seconds, amplitude, message):
    rate = 8000
    t = np.arange(int(seconds * rate)) / rate
    samples = (amplitude * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    out = local_worker({"action": "upload", "voice_name": "bounds",
                        "voice_base64": b64(wav_bytes(samples, rate))})
    assert out["error"].startswith("unsupported_media:") and message in out["error"], out


def test_upload_from_local_http_server(local_worker, http_files, reference_wav, monkeypatch):
    monkeypatch.setenv("ALLOW_PRIVATE_URLS", "true")  # the test server is on 127.0.0.1
    url = http_files.serve("/voice.wav", reference_wav)
    hop = http_files.redirect("/short-link", url)
    out = local_worker({"action": "upload", "voice_name": "fetched", "voice_url": hop,
                        "reference_text": REFERENCE_TEXT})
    assert "error" not in out, out
    assert out["has_ref_text"] is True


def test_upload_url_errors(local_worker, http_files, monkeypatch):
    monkeypatch.setenv("ALLOW_PRIVATE_URLS", "true")
    missing = local_worker({"action": "upload", "voice_name": "x",
                            "voice_url": http_files.base + "/nothing"})
    assert missing["error"].startswith("fetch_failed:") and "404" in missing["error"]
    loop = http_files.redirect("/loop", http_files.base + "/loop")
    looped = local_worker({"action": "upload", "voice_name": "x", "voice_url": loop})
    assert looped["error"].startswith("fetch_failed:") and "redirected" in looped["error"]
    monkeypatch.setenv("MAX_UPLOAD_BYTES", "2048")
    big = http_files.serve("/big.wav", b"\x00" * 4096)
    too_big = local_worker({"action": "upload", "voice_name": "x", "voice_url": big})
    assert too_big["error"].startswith("payload_too_large:")


def test_legacy_flat_voices_are_found_listed_and_used(local_worker, reference_wav):
    storage = local_worker.storage
    storage.put_bytes("voices/old_voice.wav", reference_wav)
    storage.put_bytes("voices/old_voice.txt", REFERENCE_TEXT.encode())
    listed = local_worker({"action": "list_voices"})
    assert [v["voice_name"] for v in listed["voices"]] == ["old_voice"]
    assert listed["voices"][0]["has_ref_text"] is True
    assert listed["voices"][0]["duration"] == pytest.approx(5.33, abs=0.02)
    link = local_worker({"action": "download", "voice_name": "old_voice.wav"})
    assert link["key"] == "voices/old_voice.wav"
    assert local_worker({"action": "delete_voice", "voice_name": "old_voice"})["deleted"]
    assert list(storage.list("voices/")) == []


def test_names_never_escape_the_voices_prefix(local_worker, reference_wav):
    for name in ("../jobs/x", "a/b", "..", ".hidden", "x" * 65, "", "ok name"):
        out = local_worker({"action": "upload", "voice_name": name,
                            "voice_base64": b64(reference_wav)})
        assert out["error"].startswith("invalid_input:"), name
    assert list(local_worker.storage.list("")) == []
