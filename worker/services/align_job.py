"""The ``align`` action: the caller's audio and text in, word timings and a subtitle file out.

The same front end, aligners, fallbacks and writers as ``tts``. Long audio is
cut into pieces at silences (the fallback places every word over the whole
recording first), and each piece is aligned with its own words, so timings do
not drift over a long recording.
"""
from __future__ import annotations

import logging
import time
from typing import Optional

from s3_utils import Storage
from settings import Settings
from worker.core.stopping import StopSignal
from worker.media import audio, received
from worker.schemas import AlignRequest
from worker.services import jobs, timing_output
from worker.text.chunking import Chunk, ChunkedText
from worker.text.frontend import PreparedText, join_spoken, prepare_text
from worker.timing.pieces import pieces

log = logging.getLogger(__name__)

MIN_ALIGN_SECONDS = 0.5


def run(request: AlignRequest, job_id: str, settings: Settings, storage: Storage,
        stop: Optional[StopSignal] = None) -> dict:
    """Run one align job under its record; a re-delivered finished job is answered as is."""
    return jobs.run_job(lambda tracker: _run(request, job_id, settings, tracker),
                        job_id, settings, storage, stop)


def _run(request: AlignRequest, job_id: str, settings: Settings,
         tracker: jobs.JobTracker) -> dict:
    started = time.perf_counter()
    tracker.stage("reference")
    samples = _caller_audio(request, settings)
    prepared = prepare_text(request.text, language=request.language,
                            normalize=request.normalize, pronunciations=request.pronunciations,
                            pauses_allowed=False)
    tracker.stage("timing")
    rate = audio.SAMPLE_RATE
    chunked, times = _pieces(prepared, samples, rate)
    timing = timing_output.time_speech(samples, rate, prepared, chunked, times, request,
                                       settings, job_id)
    tracker.stage("uploading")
    stored = {"job_id": job_id, "status": jobs.COMPLETED,
              "duration": round(len(samples) / rate, 3)}
    stored.update(timing_output.store(timing, request, job_id, tracker))
    stored["metrics"] = {"total": round(time.perf_counter() - started, 4)}
    log.info("job %s: aligned %d words over %.1f s of audio in %d pieces by %s", job_id,
             stored["word_count"], stored["duration"], len(chunked.chunks),
             stored["timing_method"])
    return stored


def _caller_audio(request: AlignRequest, settings: Settings):
    with received.temp_file("align-") as path:
        received.save(request.audio_url, request.audio_base64, path,
                      url_limit=settings.max_align_bytes, b64_limit=settings.max_upload_bytes,
                      allow_private=settings.allow_private_urls, b64_field="audio_base64")
        return received.decode_speech(path, MIN_ALIGN_SECONDS, settings.max_align_seconds)


def _pieces(prepared: PreparedText, samples, rate: int) -> tuple:
    """The recording as chunks of at most 30 s cut at silences, each with the
    spoken words said in it, and each chunk's (start, end) in seconds."""
    units = list(prepared.units)
    groups = pieces([spoken for spoken, _ in units], samples, rate,
                    language=prepared.language)
    chunks = [Chunk(join_spoken([spoken for spoken, _ in units[first:end]]),
                    tuple(units[first:end]), 0.0) for first, end, _, _ in groups]
    return ChunkedText(0.0, tuple(chunks)), [(start, stop) for _, _, start, stop in groups]
