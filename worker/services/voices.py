"""The voice library: upload, list, delete, and references with their transcripts.

Layout: ``voices/<name>/reference.wav`` and ``voices/<name>/voice.json``. Voices
of the earlier worker's flat layout (``voices/<name>.wav`` + ``voices/<name>.txt``)
are found, listed and deleted too. Names reach keys only after the schema's
pattern (letters, digits, ``_``, ``-``), so no name can leave ``voices/``.
"""
from __future__ import annotations

import base64
import binascii
import importlib.util
import logging
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from s3_utils import Storage
from worker.core.errors import CONFLICT, INVALID_INPUT, NOT_FOUND, PAYLOAD_TOO_LARGE, WorkerError
from worker.media import audio
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
    pronunciations: dict = field(default_factory=dict)


def reference_key(name: str) -> str:
    return f"voices/{name}/reference.wav"


def meta_key(name: str) -> str:
    return f"voices/{name}/voice.json"


def flat_keys(name: str) -> tuple:
    return f"voices/{name}.wav", f"voices/{name}.txt"


def exists(storage: Storage, name: str) -> bool:
    return bool(storage.head(reference_key(name)) or storage.head(flat_keys(name)[0]))


def upload(storage: Storage, request, settings, fetch: Callable,
           transcribe: Optional[Transcriber] = None) -> dict:
    """Store a voice from a URL or base64; see the contract's ``upload``."""
    name = request.voice_name
    if not request.overwrite and exists(storage, name):
        raise WorkerError(CONFLICT, f"voice {name} exists; pass overwrite: true to replace it")
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
            "language": request.language, "created_at": now_iso()}
    # The reference goes first: a voice.json never names audio that is not there.
    storage.put_bytes(reference_key(name), audio.encode(reference.samples,
                                                        reference.sample_rate, "wav"))
    storage.put_json(meta_key(name), meta)
    storage.delete([key for key in flat_keys(name) if storage.head(key)])
    meta["has_ref_text"] = bool(meta.pop("ref_text"))
    meta.pop("language")
    return meta


def _receive(request, path: Path, settings, fetch: Callable) -> None:
    if request.voice_url:
        fetch(request.voice_url, path, settings.max_upload_bytes, settings.allow_private_urls)
        return
    try:
        data = base64.b64decode(_strip_data_url(request.voice_base64), validate=True)
    except (binascii.Error, ValueError):
        raise WorkerError(INVALID_INPUT, "voice_base64: not valid base64") from None
    if len(data) > settings.max_upload_bytes:
        raise WorkerError(PAYLOAD_TOO_LARGE, f"voice_base64 decodes to {len(data)} bytes; "
                          f"the limit is {settings.max_upload_bytes}")
    path.write_bytes(data)


def _strip_data_url(value: str) -> str:
    # Browsers hand out "data:audio/wav;base64,...."; accept it as the bytes it holds.
    return value.split(",", 1)[1] if value.startswith("data:") and "," in value else value


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
    data = storage.get_bytes(reference_key(name))
    if data is not None:
        meta = storage.get_json(meta_key(name)) or {}
        samples, rate = audio.read_wav(data)
        return VoiceReference(name, samples, rate, meta.get("ref_text"), meta.get("language"))
    wav_key, txt_key = flat_keys(name)
    data = storage.get_bytes(wav_key)
    if data is None:
        raise WorkerError(NOT_FOUND, f"voice {name} does not exist; list_voices shows the "
                          "stored voices")
    samples, rate = audio.read_wav(data)
    limit = int(audio.MAX_REFERENCE_SECONDS * rate)
    if len(samples) > limit:
        samples = audio.clip_at_silence(samples, rate, audio.MAX_REFERENCE_SECONDS)
    text = storage.get_bytes(txt_key)
    ref_text = text.decode("utf-8", "replace").strip() or None if text else None
    return VoiceReference(name, samples, rate, ref_text, None, flat=True)


def package_reference() -> VoiceReference:
    """The reference clip and transcript that the f5-tts package ships."""
    spec = importlib.util.find_spec("f5_tts")
    if spec is None or not spec.submodule_search_locations:
        raise WorkerError(NOT_FOUND, "no default voice: set DEFAULT_VOICE or install f5-tts")
    path = Path(list(spec.submodule_search_locations)[0]) / PACKAGE_REFERENCE[0]
    samples, rate = audio.read_wav(path.read_bytes())
    return VoiceReference("default", samples, rate, PACKAGE_REFERENCE[1], "en")


def save_transcript(storage: Storage, voice: VoiceReference, text: str) -> None:
    """Store a transcript made by a job, so the voice is transcribed once."""
    if voice.flat:
        storage.put_bytes(flat_keys(voice.name)[1], text.encode(), "text/plain")
        return
    meta = storage.get_json(meta_key(voice.name)) or {"voice_name": voice.name}
    meta["ref_text"] = text
    storage.put_json(meta_key(voice.name), meta)


def list_voices(storage: Storage) -> dict:
    objects = {info.key: info for info in storage.list("voices/")}
    names = {key.split("/")[1] for key in objects if key.endswith("/reference.wav")}
    flat = {key[len("voices/"):-4] for key in objects
            if key.count("/") == 1 and key.endswith(".wav")}
    voices = [_describe(storage, name, objects) for name in names]
    voices += [_describe_flat(storage, name, objects) for name in flat - names]
    voices.sort(key=lambda voice: voice["voice_name"])
    return {"voices": voices, "count": len(voices)}


def _describe(storage: Storage, name: str, objects: dict) -> dict:
    meta = storage.get_json(meta_key(name)) or {}
    info = objects[reference_key(name)]
    return {"voice_name": name, "duration": meta.get("duration"),
            "has_ref_text": bool(meta.get("ref_text")), "language": meta.get("language"),
            "created_at": meta.get("created_at") or _iso(info.last_modified),
            "size_bytes": info.size}


def _describe_flat(storage: Storage, name: str, objects: dict) -> dict:
    wav_key, txt_key = flat_keys(name)
    info = objects[wav_key]
    samples, rate = audio.read_wav(storage.get_bytes(wav_key) or b"")
    return {"voice_name": name, "duration": round(len(samples) / rate, 3),
            "has_ref_text": txt_key in objects, "language": None,
            "created_at": _iso(info.last_modified), "size_bytes": info.size}


def _iso(timestamp: float) -> str:
    from datetime import datetime
    return datetime.fromtimestamp(timestamp, UTC).isoformat(
        timespec="seconds").replace("+00:00", "Z")


def delete(storage: Storage, name: str) -> dict:
    keys = [info.key for info in storage.list(f"voices/{name}/")]
    keys += [key for key in flat_keys(name) if storage.head(key)]
    if not keys:
        raise WorkerError(NOT_FOUND, f"voice {name} does not exist")
    storage.delete(keys)
    return {"voice_name": name, "deleted": True}


def stored_reference_key(storage: Storage, name: str) -> str:
    """The key of a voice's reference audio, in whichever layout it is stored."""
    for key in (reference_key(name), flat_keys(name)[0]):
        if storage.head(key):
            return key
    raise WorkerError(NOT_FOUND, f"voice {name} does not exist")
