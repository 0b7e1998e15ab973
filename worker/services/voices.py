"""The voice library: upload, list, delete, and references with their transcripts.

Where the objects live and how an upload becomes visible whole (conflicts,
overwrites, the earlier layouts) is ``voice_store``'s. Names reach keys only
after the schema's pattern (letters, digits, ``_``, ``-``), so no name can
leave ``voices/``.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from s3_utils import Storage
from worker.core import keys
from worker.core.errors import NOT_FOUND, WorkerError
from worker.media import audio, received
from worker.services import voice_store
from worker.services.jobs import now_iso

log = logging.getLogger(__name__)

PACKAGE_REFERENCE = ("infer/examples/basic/basic_ref_en.wav",
                     "Some call me nature, others call me mother nature.")
Transcriber = Callable[[np.ndarray, int], str]


@dataclass
class VoiceReference:
    name: str
    samples: np.ndarray
    sample_rate: int
    ref_text: Optional[str]
    language: Optional[str]
    flat: bool = False      # stored in the earlier worker's flat layout
    pronunciations: dict = field(default_factory=dict)   # word -> respelling
    audio_key: Optional[str] = None   # the stored audio these samples came from


def exists(storage: Storage, name: str) -> bool:
    return voice_store.find(storage, name) is not None


def upload(storage: Storage, request, settings, fetch: Callable,
           transcribe: Optional[Transcriber] = None) -> dict:
    """Store a voice from a URL or base64; see the contract's ``upload``."""
    name = request.voice_name
    if not request.overwrite and exists(storage, name):
        # Early, to spare the decode; voice_store decides races atomically.
        raise voice_store.conflict_error(name)
    fd, tmp = tempfile.mkstemp(prefix="voice-", suffix=".bin")
    os.close(fd)
    try:
        _receive(request, Path(tmp), settings, fetch)
        reference = audio.load_reference(Path(tmp))
    finally:
        os.unlink(tmp)
    ref_text = _transcript_for(reference, request.ref_text, transcribe, name)
    meta = {"voice_name": name, "duration": round(reference.duration, 3),
            "original_duration": round(reference.original_duration, 3),
            "sample_rate": reference.sample_rate, "ref_text": ref_text,
            "language": request.language, "created_at": now_iso(),
            "pronunciations": dict(request.pronunciations or {})}
    wav = audio.encode(reference.samples, reference.sample_rate, "wav")
    voice_store.publish(storage, name, wav, meta, request.overwrite)
    return {"voice_name": name, "duration": meta["duration"],
            "original_duration": meta["original_duration"],
            "sample_rate": meta["sample_rate"], "has_ref_text": bool(ref_text),
            "created_at": meta["created_at"]}


def _receive(request, path: Path, settings, fetch: Callable) -> None:
    if request.voice_url:
        fetch(request.voice_url, path, settings.max_upload_bytes, settings.allow_private_urls)
        return
    received.save(None, request.voice_base64, path, url_limit=settings.max_upload_bytes,
                  b64_limit=settings.max_upload_bytes, allow_private=settings.allow_private_urls,
                  b64_field="voice_base64")


def _transcript_for(reference: audio.Reference, supplied: Optional[str],
                    transcribe: Optional[Transcriber], name: str) -> Optional[str]:
    """A transcript that matches the stored (possibly cut) audio, or None."""
    if not reference.was_cut:
        return supplied
    if supplied is None or transcribe is None:
        return None
    try:
        return transcribe(reference.samples, reference.sample_rate) or None
    except WorkerError as exc:
        # The first tts job transcribes instead; the upload itself is sound.
        log.warning("voice %s: could not transcribe the cut reference (%s)", name, exc)
        return None


def load(storage: Storage, name: str) -> VoiceReference:
    """A stored voice's reference audio with the transcript and metadata of the same upload."""
    found = voice_store.find(storage, name, storage.get_bytes)
    if found is None:
        raise WorkerError(NOT_FOUND, f"voice {name} does not exist; list_voices shows the "
                          "stored voices")
    stored, data = found
    samples, rate = audio.read_wav(data)
    if stored.layout == "flat" and len(samples) > int(audio.MAX_REFERENCE_SECONDS * rate):
        samples = audio.clip_at_silence(samples, rate, audio.MAX_REFERENCE_SECONDS)
    meta = stored.meta
    ref_text = meta.get("ref_text") or _saved_transcript(storage, stored)
    pronunciations = meta.get("pronunciations")
    return VoiceReference(name, samples, rate, ref_text, meta.get("language"),
                          flat=stored.layout == "flat",
                          pronunciations=dict(pronunciations) if isinstance(
                              pronunciations, dict) else {},
                          audio_key=stored.audio_key)


def _saved_transcript(storage: Storage, stored: voice_store.StoredVoice) -> Optional[str]:
    text = storage.get_bytes(stored.transcript_key)
    return (text.decode("utf-8", "replace").strip() or None) if text else None


def package_reference() -> VoiceReference:
    """The reference clip and transcript that the f5-tts package ships."""
    spec = importlib.util.find_spec("f5_tts")
    if spec is None or not spec.submodule_search_locations:
        raise WorkerError(NOT_FOUND, "no default voice: set DEFAULT_VOICE or install f5-tts")
    path = Path(list(spec.submodule_search_locations)[0]) / PACKAGE_REFERENCE[0]
    samples, rate = audio.read_wav(path.read_bytes())
    # No language: the clip is English, but the text it clones into may not be
    # (the job detects it from the text instead).
    return VoiceReference("default", samples, rate, PACKAGE_REFERENCE[1], None)


def save_transcript(storage: Storage, voice: VoiceReference, text: str) -> None:
    """Store a transcript made by a job, so the voice is transcribed once.

    It goes beside the audio it transcribes, never into voice.json: an upload
    that replaced the voice meanwhile keeps its own metadata, and the
    transcript goes with the replaced audio.
    """
    if voice.audio_key is None:
        return
    key = voice.audio_key[:-len(".wav")] + ".txt"
    storage.put_bytes(key, text.encode("utf-8"), "text/plain")


def list_voices(storage: Storage) -> dict:
    objects = {info.key: info for info in storage.list(keys.VOICES)}
    names, flat = set(), set()
    for key in objects:
        parts = key.split("/")
        if len(parts) == 3 and parts[2] in ("voice.json", voice_store.AUDIO_NAME):
            names.add(parts[1])
        elif len(parts) == 2 and key.endswith(".wav"):
            flat.add(parts[1][:-4])
    described = [_describe(storage, name, objects) for name in names | flat]
    voices = sorted((voice for voice in described if voice),
                    key=lambda voice: voice["voice_name"])
    return {"voices": voices, "count": len(voices)}


def _describe(storage: Storage, name: str, objects: dict) -> Optional[dict]:
    def head(key):
        return objects.get(key) or storage.head(key)
    found = voice_store.find(storage, name, head)
    if found is None:
        return None   # deleted since the listing
    stored, info = found
    meta = stored.meta
    duration = meta.get("duration")
    if stored.layout == "flat" or duration is None:
        samples, rate = audio.read_wav(storage.get_bytes(stored.audio_key) or b"")
        duration = round(len(samples) / rate, 3)
    return {"voice_name": name, "duration": duration,
            "has_ref_text": bool(meta.get("ref_text")) or stored.transcript_key in objects,
            "language": meta.get("language"),
            "created_at": meta.get("created_at") or _iso(info.last_modified),
            "size_bytes": info.size}


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(
        timespec="seconds").replace("+00:00", "Z")


def delete(storage: Storage, name: str) -> dict:
    if not voice_store.remove(storage, name):
        raise WorkerError(NOT_FOUND, f"voice {name} does not exist")
    return {"voice_name": name, "deleted": True}


def stored_reference_key(storage: Storage, name: str) -> str:
    """The key of a voice's reference audio, in whichever layout it is stored."""
    found = voice_store.find(storage, name)
    if found is None:
        raise WorkerError(NOT_FOUND, f"voice {name} does not exist")
    return found[0].audio_key
