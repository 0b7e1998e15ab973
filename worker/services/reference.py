"""The reference voice of a job: a stored voice, a voice URL, or the default,
with the transcript the model needs (given, stored, or transcribed once)."""
from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from s3_utils import Storage
from settings import Settings
from worker.inference import transcriber
from worker.media import audio, url_fetch
from worker.services import voices

log = logging.getLogger(__name__)


@dataclass
class Reference:
    voice: voices.VoiceReference
    ref_text: str
    source: str          # request | voice | transcribed


def resolve(voice_name: Optional[str], voice_url: Optional[str], ref_text: Optional[str],
            settings: Settings, storage: Storage, job_id: str) -> Reference:
    """The reference for a job's voice fields; transcribes (and stores the
    transcript of) a voice that has none, once."""
    voice = _voice(voice_name, voice_url, settings, storage)
    if ref_text:
        return Reference(voice, ref_text, "request")
    if voice.ref_text:
        return Reference(voice, voice.ref_text, "voice")
    log.info("job %s: transcribing the reference of voice %s", job_id, voice.name)
    text = transcriber.transcribe(settings, voice.samples, voice.sample_rate)
    if voice.name not in ("default", "voice_url"):
        voices.save_transcript(storage, voice, text)
    return Reference(voice, text, "transcribed")


def _voice(name: Optional[str], url: Optional[str], settings: Settings,
           storage: Storage) -> voices.VoiceReference:
    if url:
        return _voice_from_url(url, settings)
    name = name or settings.default_voice
    return voices.load(storage, name) if name else voices.package_reference()


def _voice_from_url(url: str, settings: Settings) -> voices.VoiceReference:
    fd, tmp = tempfile.mkstemp(prefix="ref-", suffix=".bin")
    os.close(fd)
    try:
        url_fetch.fetch_to_file(url, Path(tmp), settings.max_upload_bytes,
                                settings.allow_private_urls)
        clip = audio.load_reference(Path(tmp))
    finally:
        os.unlink(tmp)
    return voices.VoiceReference("voice_url", clip.samples, clip.sample_rate, None, None)
