"""The ``tts`` action: reference -> generate -> time -> write -> record."""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from s3_utils import Storage
from settings import Settings
from worker.core.errors import INTERNAL_ERROR, WorkerError
from worker.inference import engine, synthesis, transcriber
from worker.media import audio, url_fetch
from worker.schemas import TtsRequest
from worker.services import jobs, voices

log = logging.getLogger(__name__)


@dataclass
class Metrics:
    """Seconds per stage of one job; ``rtf`` is inference time per second of audio."""

    model_load: float = 0.0
    reference: float = 0.0
    inference: float = 0.0
    timing: float = 0.0
    upload: float = 0.0
    total: float = 0.0
    rtf: float = 0.0

    @contextmanager
    def stage(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            setattr(self, name, getattr(self, name) + time.perf_counter() - started)

    def rounded(self) -> dict:
        return {name: round(value, 4) for name, value in asdict(self).items()}


@dataclass
class Reference:
    voice: voices.VoiceReference
    ref_text: str
    source: str          # request | voice | transcribed


def run(request: TtsRequest, job_id: str, settings: Settings, storage: Storage) -> dict:
    """Run one tts job and keep its record; a re-delivered finished job is answered as is."""
    tracker = jobs.JobTracker(storage, job_id)
    finished = tracker.begin()
    if finished is not None:
        return jobs.with_fresh_urls(storage, finished, settings.presigned_url_expiry)
    try:
        stored = _run(request, job_id, settings, storage, tracker)
        tracker.complete(stored)
    except WorkerError as exc:
        tracker.fail(str(exc))
        raise
    except Exception as exc:
        log.exception("job %s: unexpected failure", job_id)
        error = WorkerError(INTERNAL_ERROR, f"the job failed unexpectedly ({type(exc).__name__}); "
                            "the worker log has the details")
        tracker.fail(str(error))
        raise error from exc
    except BaseException:
        # Cancelled or shutting down: the record must not stay IN_PROGRESS.
        tracker.fail(f"{INTERNAL_ERROR}: the job was interrupted before it finished")
        raise
    return jobs.with_fresh_urls(storage, stored, settings.presigned_url_expiry)


def _run(request: TtsRequest, job_id: str, settings: Settings, storage: Storage,
         tracker: jobs.JobTracker) -> dict:
    metrics, started = Metrics(), time.perf_counter()
    # The caller's reference first: a missing voice or a refused URL fails
    # before the model is loaded for nothing.
    tracker.stage("reference")
    with metrics.stage("reference"):
        reference = _reference(request, settings, storage, job_id)
    tracker.stage("loading_model")
    with metrics.stage("model_load"):
        loaded_before = engine.is_loaded()
        model = engine.get_model(settings)
    if loaded_before:
        metrics.model_load = 0.0
    tracker.stage("generating")
    seed = request.seed if request.seed is not None else seed_for(job_id)
    with metrics.stage("inference"):
        generation = synthesis.generate(
            model, reference.voice.samples, reference.voice.sample_rate, reference.ref_text,
            request.text, seed=seed, speed=request.speed, nfe_step=request.nfe_step,
            cfg_strength=request.cfg_strength)
    if request.remove_silence:
        generation = _without_pauses(generation)
    timing = None
    if request.return_word_timings:
        tracker.stage("timing")
        with metrics.stage("timing"):
            timing = _word_timings(request, generation, reference, settings, job_id)
    tracker.stage("uploading")
    with metrics.stage("upload"):
        stored = _store(request, job_id, generation, reference, timing, tracker)
    metrics.total = time.perf_counter() - started
    metrics.rtf = metrics.inference / max(stored["duration"], 1e-6)
    stored["metrics"] = metrics.rounded()
    log.info("job %s: done, %.2f s audio, seed %d, metrics %s", job_id, stored["duration"],
             seed, stored["metrics"])
    return stored


def seed_for(job_id: str) -> int:
    """The seed of a job that names none: unpredictable across jobs (RunPod ids are
    random), but the same when RunPod delivers the same job twice, so both runs
    write the same bytes and the record always matches the stored audio."""
    digest = hashlib.sha256(job_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") & synthesis.MAX_SEED


def _reference(request: TtsRequest, settings: Settings, storage: Storage,
               job_id: str) -> Reference:
    voice = _voice(request, settings, storage)
    if request.ref_text:
        return Reference(voice, request.ref_text, "request")
    if voice.ref_text:
        return Reference(voice, voice.ref_text, "voice")
    log.info("job %s: transcribing the reference of voice %s", job_id, voice.name)
    text = transcriber.transcribe(settings, voice.samples, voice.sample_rate)
    if voice.name not in ("default", "voice_url"):
        voices.save_transcript(storage, voice, text)
    return Reference(voice, text, "transcribed")


def _voice(request: TtsRequest, settings: Settings, storage: Storage) -> voices.VoiceReference:
    if request.voice_url:
        return _voice_from_url(request.voice_url, settings)
    name = request.voice or settings.default_voice
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


def _without_pauses(generation: synthesis.Generation) -> synthesis.Generation:
    rate = generation.sample_rate
    samples, ranges = audio.remove_silences(generation.samples, rate)
    chunks = [synthesis.ChunkAudio(chunk.text, audio.map_time(chunk.start, ranges, rate),
                                    audio.map_time(chunk.end, ranges, rate))
              for chunk in generation.chunks]
    return synthesis.Generation(samples, rate, chunks, generation.seed)


def _word_timings(request: TtsRequest, generation: synthesis.Generation,
                  reference: Reference, settings: Settings, job_id: str):
    import timing_formats
    from worker.text import words
    from worker.timing import chain

    language = (request.language or reference.voice.language
                or words.detect_language(request.text))
    spans = [chain.ChunkSpan(c.text, c.start, c.end) for c in generation.chunks]
    result = chain.compute_word_timings(
        request.text, generation.samples, generation.sample_rate, spans, language,
        request.timing_method, settings)
    body = timing_formats.render(request.timing_format, result.words, job_id=job_id,
                                 method=result.method, language=result.language,
                                 cues=request.subtitle_cues, subtitle=request.subtitle)
    if result.fallback_reason:
        log.info("job %s: timings by %s (%s)", job_id, result.method, result.fallback_reason)
    return result, body


def _store(request: TtsRequest, job_id: str, generation: synthesis.Generation,
           reference: Reference, timing, tracker: jobs.JobTracker) -> dict:
    """Write the requested files (objects first; the caller writes the record last)."""
    fmt = request.output_format
    audio_key = f"{jobs.job_prefix(job_id)}audio.{fmt}"
    tracker.put(audio_key, audio.encode(generation.samples, generation.sample_rate, fmt))
    stored = {
        "job_id": job_id, "status": jobs.COMPLETED, "audio_key": audio_key,
        "audio_format": fmt, "duration": round(len(generation.samples) / generation.sample_rate, 3),
        "sample_rate": generation.sample_rate, "seed": generation.seed,
        "voice": reference.voice.name, "ref_text_source": reference.source,
    }
    if timing is not None:
        result, body = timing
        timing_key = f"{jobs.job_prefix(job_id)}timings.{request.timing_format}"
        tracker.put(timing_key, body.encode("utf-8"))
        stored.update({
            "timing_method": result.method, "timing_fallback_reason": result.fallback_reason,
            "language": result.language, "timing_format": request.timing_format,
            "timing_key": timing_key, "word_count": len(result.words),
        })
        if request.timing_inline:
            stored["word_timings"] = [word.to_dict() for word in result.words]
    return stored
