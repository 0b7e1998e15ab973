"""The lines of a script, resolved: each segment's voice, text after the front
end, speed, seed and the key its audio is stored under.

A field a segment leaves out is the script's. A segment that names its own
voice does not inherit the script's transcript (that is another voice's). A
seedless segment's seed comes from its own inputs, so the same script
submitted again asks for the same audio. Errors name the segment.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from typing import Dict, List, Optional

from s3_utils import Storage
from settings import Settings
from worker.core.errors import WorkerError
from worker.schemas import ScriptRequest
from worker.services import reference, segments
from worker.services.segments import StoredSegment
from worker.text.chunking import ChunkedText
from worker.text.frontend import PreparedText, prepare_text


@dataclass
class Line:
    index: int
    text: str                       # as written
    ref: reference.Reference
    ref_digest: str                 # SHA-256 of the reference as the model gets it
    prepared: PreparedText
    speed: float
    seed: int
    duration: Optional[float]       # a target length in seconds (one chunk), or None
    pause_after: float
    chunked: Optional[ChunkedText] = None   # the chunk plan, once the reference is prepared
    key: str = ""                   # set once the model (checkpoint, numerics) is known
    stored: Optional[StoredSegment] = None


@contextlib.contextmanager
def about_segment(index: int):
    """A failure while handling one segment says which (the contract asks it)."""
    try:
        yield
    except WorkerError as exc:
        prefix = f"segments[{index}]"
        message = exc.message if exc.message.startswith(prefix) else f"{prefix}: {exc.message}"
        raise WorkerError(exc.code, message, refresh_worker=exc.refresh_worker,
                          retryable=exc.retryable) from exc


def resolve(request: ScriptRequest, settings: Settings, storage: Storage,
            job_id: str) -> List[Line]:
    """Every segment of ``request`` as a Line; each distinct voice is loaded once."""
    voices: Dict[tuple, reference.Reference] = {}
    lines = []
    for index, segment in enumerate(request.segments):
        with about_segment(index):
            lines.append(_line(index, segment, request, settings, storage, job_id, voices))
    if len(lines) > 1 and lines[-1].pause_after:
        lines[-1] = replace(lines[-1], pause_after=0.0)   # none after the last
    return lines


def _line(index, segment, request, settings, storage, job_id, voices) -> Line:
    own_voice = bool(segment.voice or segment.voice_url)
    voice = (segment.voice, segment.voice_url) if own_voice else (request.voice,
                                                                   request.voice_url)
    ref_text = segment.ref_text or (None if own_voice else request.ref_text)
    wanted = (*voice, ref_text)
    if wanted not in voices:
        voices[wanted] = reference.resolve(*voice, ref_text, settings, storage, job_id)
    ref = voices[wanted]
    prepared = prepare_text(segment.text, language=segment.language or request.language,
                            voice_language=ref.voice.language, normalize=request.normalize,
                            pronunciations=request.pronunciations,
                            voice_pronunciations=ref.voice.pronunciations,
                            field=f"segments[{index}].text")
    digest = segments.reference_digest(ref.voice.samples, ref.voice.sample_rate, ref.ref_text)
    speed = segment.speed if segment.speed is not None else request.speed
    seed = segment.seed if segment.seed is not None else segments.derived_seed(
        segment.text, digest, speed, segment.duration, prepared.language)
    return Line(index, segment.text, ref, digest, prepared, speed, seed, segment.duration,
                segment.pause_after)


def keyed(lines: List[Line], request: ScriptRequest, checkpoint: str,
          numerics: dict) -> None:
    """Each line's store key, from everything that determines its audio: the
    model texts of its chunks and its pauses (the front end's result, cut by
    the chunk budget), reference, seed, speed, duration and the model's."""
    for line in lines:
        plan = [line.chunked.lead_pause] + [[chunk.text, chunk.pause_after]
                                            for chunk in line.chunked.chunks]
        line.key = segments.segment_key(
            plan, line.ref_digest, line.seed, line.speed, line.duration, request.nfe_step,
            request.cfg_strength, checkpoint, numerics)
