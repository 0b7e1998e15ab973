"""The ``tts`` action: reference -> generate -> time -> write -> record."""
from __future__ import annotations

import hashlib
import logging
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Optional

from s3_utils import Storage
from settings import Settings
from worker.core import keys
from worker.core.stopping import StopSignal
from worker.inference import engine, synthesis
from worker.media import audio, loudness
from worker.schemas import TtsRequest
from worker.services import jobs, reference, timing_output
from worker.text.frontend import PreparedText, prepare_text

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


def run(request: TtsRequest, job_id: str, settings: Settings, storage: Storage,
        stop: Optional[StopSignal] = None, notify=None) -> dict:
    """Run one tts job and keep its record; a re-delivered finished job is answered as is."""
    return jobs.run_job(lambda tracker: _run(request, job_id, settings, storage, tracker),
                        job_id, settings, storage, stop, notify)


@dataclass
class Setup:
    """What a tts job has before it generates: its voice, text and model."""
    ref: reference.Reference
    prepared: PreparedText
    model: object
    seed: int
    metrics: Metrics
    started: float


def _run(request: TtsRequest, job_id: str, settings: Settings, storage: Storage,
         tracker: jobs.JobTracker) -> dict:
    setup = start(request, job_id, settings, storage, tracker)
    with setup.metrics.stage("inference"):
        generation = synthesis.generate(
            setup.model, setup.ref.voice.samples, setup.ref.voice.sample_rate,
            setup.ref.ref_text, setup.prepared, seed=setup.seed, speed=request.speed,
            nfe_step=request.nfe_step, cfg_strength=request.cfg_strength,
            max_chunk_seconds=settings.max_chunk_seconds,
            remove_silence=request.remove_silence, check=tracker.stop.check,
            progress=_chunk_progress(tracker))
    return finish(request, job_id, settings, tracker, setup, generation)


def start(request: TtsRequest, job_id: str, settings: Settings, storage: Storage,
          tracker: jobs.JobTracker) -> Setup:
    """Reference, text and model, each stage in the record."""
    metrics, started = Metrics(), time.perf_counter()
    # The caller's reference first: a missing voice or a refused URL fails
    # before the model is loaded for nothing.
    tracker.stage("reference")
    with metrics.stage("reference"):
        ref = reference.resolve(request.voice, request.voice_url, request.ref_text, settings,
                                storage, job_id)
        prepared = prepare(request, ref, job_id)
    tracker.stage("loading_model")
    with metrics.stage("model_load"):
        loaded_before = engine.is_loaded()
        model = engine.get_model(settings)
    if loaded_before:
        metrics.model_load = 0.0
    tracker.stage("generating")
    seed = request.seed if request.seed is not None else seed_for(job_id)
    return Setup(ref, prepared, model, seed, metrics, started)


def finish(request: TtsRequest, job_id: str, settings: Settings, tracker: jobs.JobTracker,
           setup: Setup, generation: synthesis.Generation) -> dict:
    """Timings, loudness and the files of a generated job; the output to record."""
    timing = None
    if request.return_word_timings:
        tracker.stage("timing")
        with setup.metrics.stage("timing"):
            times = [(chunk.start, chunk.end) for chunk in generation.chunks]
            timing = timing_output.time_speech(generation.samples, generation.sample_rate,
                                               setup.prepared, generation.chunked, times,
                                               request, settings, job_id)
    if request.loudness is not None:
        generation.samples = loudness.normalize_loudness(
            generation.samples, generation.sample_rate, request.loudness)
    tracker.stage("uploading")
    with setup.metrics.stage("upload"):
        stored = _store(request, job_id, generation, setup.ref, setup.prepared, timing,
                        tracker, setup.model.numerics())
    metrics = setup.metrics
    metrics.total = time.perf_counter() - setup.started
    metrics.rtf = metrics.inference / max(stored["duration"], 1e-6)
    stored["metrics"] = metrics.rounded()
    log.info("job %s: done, %.2f s audio, seed %d, metrics %s", job_id, stored["duration"],
             setup.seed, stored["metrics"])
    return stored


def _chunk_progress(tracker: jobs.JobTracker):
    """Progress in chunks, for a text of more than one."""
    def advance(done: int, total: int) -> None:
        if total > 1:
            tracker.advance(done, total)
    return advance


def prepare(request, ref: reference.Reference, job_id: str) -> PreparedText:
    """The request's text through the front end, with the voice's language and
    pronunciations under the request's."""
    prepared = prepare_text(request.text, language=request.language,
                            voice_language=ref.voice.language, normalize=request.normalize,
                            pronunciations=request.pronunciations,
                            voice_pronunciations=ref.voice.pronunciations)
    for note in prepared.notes:
        log.info("job %s: text: %s", job_id, note)
    return prepared


def seed_for(job_id: str) -> int:
    """The seed of a job that names none: unpredictable across jobs (RunPod ids are
    random), but the same when RunPod delivers the same job twice, so both runs
    write the same bytes and the record always matches the stored audio."""
    digest = hashlib.sha256(job_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") & synthesis.MAX_SEED


def _store(request: TtsRequest, job_id: str, generation: synthesis.Generation,
           ref: reference.Reference, prepared: PreparedText, timing,
           tracker: jobs.JobTracker, numerics: dict) -> dict:
    """Write the requested files (objects first; the caller writes the record last)."""
    fmt = request.output_format
    audio_key = keys.job_audio(job_id, fmt)
    tracker.put(audio_key, audio.encode(generation.samples, generation.sample_rate, fmt))
    stored = {
        "job_id": job_id, "status": jobs.COMPLETED, "audio_key": audio_key,
        "audio_format": fmt, "duration": round(len(generation.samples) / generation.sample_rate, 3),
        "sample_rate": generation.sample_rate, "seed": generation.seed,
        "voice": ref.voice.name, "ref_text_source": ref.source,
        "spoken_text": prepared.spoken_text, "numerics": numerics,
    }
    stored.update(timing_output.store(timing, request, job_id, tracker))
    return stored
