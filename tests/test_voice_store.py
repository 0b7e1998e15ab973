"""Voice layouts and the publish protocol, in one process: every layout is read,
replaced and deleted; failed uploads leave nothing; readers survive a voice
being replaced under them; pronunciations are stored and returned."""
from __future__ import annotations

import base64
import json
import os
import time

import pytest

from s3_utils import LocalStorage, S3Storage
from tests.conftest import REFERENCE_TEXT
from worker.core.errors import STORAGE_ERROR, WorkerError
from worker.services import voice_store, voices


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(params=["local", "s3"])
def worker(request):
    return request.getfixturevalue(f"{request.param}_worker")


def upload(worker, name, wav, **fields):
    return worker({"action": "upload", "voice_name": name, "voice_base64": b64(wav), **fields})


def keys_of(storage, prefix="voices/") -> list:
    return sorted(info.key for info in storage.list(prefix))


def test_pronunciations_are_stored_and_loaded(worker, reference_wav):
    table = {"Nguyen": "win", "GIF": "jif"}
    out = upload(worker, "spoken", reference_wav, ref_text=REFERENCE_TEXT, pronunciations=table)
    assert "error" not in out, out
    voice = voices.load(worker.storage, "spoken")
    assert voice.pronunciations == table and voice.ref_text == REFERENCE_TEXT
    stored = worker.storage.get_json("voices/spoken/voice.json")
    assert stored["pronunciations"] == table
    assert voice.audio_key == stored["reference"]
    # Without any, the voice has an empty table.
    assert "error" not in upload(worker, "plain", reference_wav)
    assert voices.load(worker.storage, "plain").pronunciations == {}


@pytest.mark.parametrize("table,why", [
    ({}, "1 to 200"), ({str(i): "x" for i in range(201)}, "1 to 200"),
    ({"w" * 65: "x"}, "64"), ({"word": ""}, "64"), ({"   ": "x"}, "0 characters"),
    ({"word": 3}, "string"), (["word"], "an object"),
])
def test_pronunciation_bounds_are_invalid_input(local_worker, reference_wav, table, why):
    out = upload(local_worker, "bounds", reference_wav, pronunciations=table)
    assert out["error"].startswith("invalid_input: pronunciations"), out
    assert why in out["error"]
    assert keys_of(local_worker.storage) == []


def test_flat_voice_counts_as_existing_and_is_replaced_whole(worker, reference_wav):
    storage = worker.storage
    storage.put_bytes("voices/old.wav", reference_wav)
    storage.put_bytes("voices/old.txt", b"the old transcript")
    assert upload(worker, "old", reference_wav)["error"].startswith("conflict:")
    assert keys_of(storage) == ["voices/old.txt", "voices/old.wav"]
    out = upload(worker, "old", reference_wav, ref_text="the new one", overwrite=True)
    assert "error" not in out, out
    assert voices.load(storage, "old").ref_text == "the new one"
    assert not any(key.startswith("voices/old.") for key in keys_of(storage))


def test_direct_layout_is_read_listed_and_replaced(worker, reference_wav):
    # This worker's layout before pointers: audio beside a voice.json without "reference".
    storage = worker.storage
    storage.put_bytes("voices/direct/reference.wav", reference_wav)
    storage.put_json("voices/direct/voice.json", {
        "voice_name": "direct", "duration": 5.333, "ref_text": REFERENCE_TEXT,
        "language": "en", "created_at": "2026-01-01T00:00:00Z"})
    voice = voices.load(storage, "direct")
    assert voice.ref_text == REFERENCE_TEXT and voice.language == "en"
    listed = worker({"action": "list_voices"})["voices"]
    assert [(v["voice_name"], v["has_ref_text"]) for v in listed] == [("direct", True)]
    link = worker({"action": "download", "voice_name": "direct"})
    assert link["key"] == "voices/direct/reference.wav"
    assert upload(worker, "direct", reference_wav)["error"].startswith("conflict:")
    assert "error" not in upload(worker, "direct", reference_wav, overwrite=True)
    keys = keys_of(storage)
    assert "voices/direct/reference.wav" not in keys and len(keys) == 2, keys
    assert voices.load(storage, "direct").ref_text is None


def test_direct_audio_without_voice_json_counts_as_a_voice(local_worker, reference_wav):
    storage = local_worker.storage
    storage.put_bytes("voices/bare/reference.wav", reference_wav)
    assert voices.exists(storage, "bare")
    assert upload(local_worker, "bare", reference_wav)["error"].startswith("conflict:")
    assert local_worker({"action": "delete_voice", "voice_name": "bare"})["deleted"]
    assert keys_of(storage) == []


def test_delete_removes_every_layout_and_every_upload(worker, reference_wav):
    storage = worker.storage
    assert "error" not in upload(worker, "gone", reference_wav)
    assert "error" not in upload(worker, "gone", reference_wav, overwrite=True)
    storage.put_bytes("voices/gone.wav", reference_wav)   # a flat leftover of the same name
    assert worker({"action": "delete_voice", "voice_name": "gone"})["deleted"] is True
    assert keys_of(storage) == []
    assert worker({"action": "delete_voice", "voice_name": "gone"})["error"].startswith(
        "not_found:")


class FailingPointer(LocalStorage):
    """A store whose voice.json writes fail (an outage at the worst moment)."""

    def put_bytes(self, key, data, content_type=None, if_absent=False):
        if key.endswith("/voice.json"):
            raise WorkerError(STORAGE_ERROR, "writing voice.json failed (simulated)")
        return super().put_bytes(key, data, content_type, if_absent)


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_failed_upload_leaves_no_objects(tmp_path, reference_wav, overwrite):
    storage = FailingPointer(tmp_path)
    with pytest.raises(WorkerError) as caught:
        voice_store.publish(storage, "broken", reference_wav, {"voice_name": "broken"},
                            overwrite)
    assert caught.value.code == STORAGE_ERROR
    assert keys_of(storage, "") == []


class ReplacedWhileRead(LocalStorage):
    """Replaces the voice between a reader's read of voice.json and of its audio,
    once: the moment an overwrite on another worker could land."""

    def __init__(self, root, replacement: bytes):
        super().__init__(root)
        self.replacement = replacement

    def get_bytes(self, key):
        if "/uploads/" in key and self.replacement:
            data, self.replacement = self.replacement, None
            voice_store.publish(LocalStorage(self.root), "moving", data,
                                {"ref_text": "second"}, overwrite=True)
        return super().get_bytes(key)


def test_a_reader_whose_audio_was_replaced_reads_the_new_pair(tmp_path, reference_wav):
    import io

    import numpy as np
    import soundfile

    samples, rate = soundfile.read(io.BytesIO(reference_wav), dtype="float32")
    quiet = io.BytesIO()
    soundfile.write(quiet, samples * 0.25, rate, format="WAV", subtype="PCM_16")
    first = voice_store.publish(LocalStorage(tmp_path), "moving", reference_wav,
                                {"ref_text": "first"}, overwrite=False)
    storage = ReplacedWhileRead(tmp_path, quiet.getvalue())
    voice = voices.load(storage, "moving")
    assert voice.ref_text == "second"
    assert np.abs(voice.samples).max() == pytest.approx(np.abs(samples).max() * 0.25, abs=1e-3)
    assert voice.audio_key != first.audio_key
    assert storage.head(first.audio_key) is None


def test_a_transcript_made_by_a_job_stays_with_its_audio(local_worker, reference_wav):
    storage = local_worker.storage
    assert "error" not in upload(local_worker, "asr", reference_wav)
    before = voices.load(storage, "asr")
    assert before.ref_text is None
    voices.save_transcript(storage, before, "what the job heard")
    assert voices.load(storage, "asr").ref_text == "what the job heard"
    assert local_worker({"action": "list_voices"})["voices"][0]["has_ref_text"] is True
    # Replaced meanwhile: a late transcript of the old audio must not describe the new.
    assert "error" not in upload(local_worker, "asr", reference_wav, overwrite=True)
    voices.save_transcript(storage, before, "a late transcript of the old audio")
    assert voices.load(storage, "asr").ref_text is None


def test_flat_voice_transcript_goes_to_its_txt(local_worker, reference_wav):
    storage = local_worker.storage
    storage.put_bytes("voices/flat.wav", reference_wav)
    voice = voices.load(storage, "flat")
    assert voice.flat and voice.ref_text is None
    voices.save_transcript(storage, voice, "heard")
    assert storage.get_bytes("voices/flat.txt") == b"heard"


def _age(storage: LocalStorage, key: str, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(storage.root / key, (then, then))


def test_dead_uploads_are_collected_young_ones_kept(local_worker, reference_wav):
    storage = local_worker.storage
    dead = "voices/kept/uploads/dead/reference.wav"
    young = "voices/kept/uploads/young/reference.wav"
    stale_claim = "voices/kept/claims/dead"
    for key in (dead, young, stale_claim):
        storage.put_bytes(key, b"x")
    for key in (dead, stale_claim):
        _age(storage, key, voice_store.IN_FLIGHT_S + 60)
    assert "error" not in upload(local_worker, "kept", reference_wav)
    keys = keys_of(storage)
    assert dead not in keys and stale_claim not in keys
    assert young in keys   # may be an upload on another worker about to point at it
    assert len(keys) == 3, keys


class NoConditionalWrites(LocalStorage):
    """A store that does not honour if_absent, simulated: the claims scheme is used."""

    def honours_if_absent(self):
        return False


def test_claims_a_dead_uploads_claim_does_not_block(tmp_path, reference_wav):
    storage = NoConditionalWrites(tmp_path)
    storage.put_bytes("voices/claimed/claims/dead", b"")
    _age(storage, "voices/claimed/claims/dead", voice_store.IN_FLIGHT_S + 60)
    voice_store.publish(storage, "claimed", reference_wav, {}, overwrite=False)
    assert keys_of(storage, "voices/claimed/claims/") == []
    assert voices.exists(storage, "claimed")


def test_claims_a_live_rival_makes_the_upload_back_off(tmp_path, reference_wav, monkeypatch):
    # A rival claim that never goes away: this upload never proceeds, and says why.
    monkeypatch.setattr(voice_store, "CLAIM_ATTEMPTS", 2)
    monkeypatch.setattr(voice_store, "CLAIM_BACKOFF_S", (0.0, 0.01))
    storage = NoConditionalWrites(tmp_path)
    storage.put_bytes("voices/busy/claims/rival", b"")
    with pytest.raises(WorkerError) as caught:
        voice_store.publish(storage, "busy", reference_wav, {}, overwrite=False)
    assert caught.value.code == "conflict" and "at the same time" in caught.value.message
    assert keys_of(storage) == ["voices/busy/claims/rival"]


def test_if_absent_probe(s3_env, tmp_path):
    from settings import load_settings
    from tests.test_voice_races import IgnoresIfAbsent

    settings = load_settings(s3_env)
    assert S3Storage(settings).honours_if_absent() is True   # moto enforces IfNoneMatch
    plain = IgnoresIfAbsent(settings)
    assert plain.honours_if_absent() is False
    assert list(plain.list("")) == []   # the probe cleans up
    assert LocalStorage(tmp_path).honours_if_absent() is True


def test_local_if_absent_write_is_whole_and_once(tmp_path):
    storage = LocalStorage(tmp_path)
    assert storage.put_json("a/voice.json", {"n": 1}, if_absent=True) is True
    assert storage.put_json("a/voice.json", {"n": 2}, if_absent=True) is False
    assert json.loads((tmp_path / "a/voice.json").read_text()) == {"n": 1}
    assert [path.name for path in (tmp_path / "a").iterdir()] == ["voice.json"]


def test_voice_json_naming_a_foreign_key_is_not_followed(local_worker, reference_wav):
    storage = local_worker.storage
    storage.put_bytes("jobs/secret/audio.wav", reference_wav)
    storage.put_json("voices/sly/voice.json", {"reference": "jobs/secret/audio.wav"})
    assert local_worker({"action": "download", "voice_name": "sly"})["error"].startswith(
        "not_found:")
