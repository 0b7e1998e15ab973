"""The ``script`` action: many lines in, one take of each, one track out.

Each segment is looked up in the segment store first; the ones not there
have their chunks generated together, in the engine's packed batches, and
each is stored (and ``progress`` advanced) as soon as the batch that
finishes it is done, so a crash loses at most one batch and a re-delivery
generates only what was not stored. Then the segments are joined with their
pauses into one track, timed as one, and written like a ``tts`` job's files.
"""
from __future__ import annotations

import logging
import time
from typing import Dict, List, Optional

import numpy as np

from s3_utils import Storage
from settings import Settings
from worker.core import keys
from worker.core.errors import INVALID_INPUT, WorkerError
from worker.core.stopping import StopSignal
from worker.inference import checkpoint, engine, synthesis
from worker.media import audio, loudness, track
from worker.schemas import ScriptRequest
from worker.services import jobs, script_lines, script_track, segments, timing_output
from worker.services.script_lines import Line
from worker.services.segments import StoredSegment
from worker.services.tts_job import Metrics

log = logging.getLogger(__name__)


def run(request: ScriptRequest, job_id: str, settings: Settings, storage: Storage,
        stop: Optional[StopSignal] = None, notify=None) -> dict:
    """Run one script job under its record; a re-delivered finished job is answered as is."""
    return jobs.run_job(lambda tracker: _run(request, job_id, settings, storage, tracker),
                        job_id, settings, storage, stop, notify)


def _run(request: ScriptRequest, job_id: str, settings: Settings, storage: Storage,
         tracker: jobs.JobTracker) -> dict:
    metrics, started = Metrics(), time.perf_counter()
    tracker.stage("reference")
    with metrics.stage("reference"):
        lines = script_lines.resolve(request, settings, storage, job_id)
    tracker.stage("loading_model")
    with metrics.stage("model_load"):
        model = engine.get_model(settings)
        _plan(lines, model, request, settings)
    tracker.stage("generating")
    with metrics.stage("inference"):
        audios, reused = _segments(lines, model, request, storage, tracker)
    rate = model.sample_rate
    placed = script_track.place(lines, audios, reused, rate)
    samples = script_track.join(placed, rate)
    if request.loudness is not None:
        samples = loudness.normalize_loudness(samples, rate, request.loudness)
    timing = None
    if request.return_word_timings:
        tracker.stage("timing")
        with metrics.stage("timing"):
            result = script_track.time_track(placed, request.timing_method, settings, job_id)
            timing = timing_output.Timing(result, timing_output.render(result, request, job_id))
    tracker.stage("uploading")
    with metrics.stage("upload"):
        stored = _store(request, job_id, samples, rate, placed, timing, tracker,
                        model.numerics())
    metrics.total = time.perf_counter() - started
    metrics.rtf = metrics.inference / max(stored["duration"], 1e-6)
    stored["metrics"] = metrics.rounded()
    log.info("job %s: script of %d segments (%d reused), %.1f s", job_id, len(lines),
             sum(reused), stored["duration"])
    return stored


def _plan(lines: List[Line], model, request: ScriptRequest, settings: Settings) -> None:
    """Each line's chunk plan (which needs its prepared reference) and store key."""
    for line in lines:
        with script_lines.about_segment(line.index):
            ref = synthesis.reference(model, line.ref.voice.samples, line.ref.voice.sample_rate,
                                      line.ref.ref_text)
            line.chunked = synthesis.chunks_for(line.prepared, line.ref.ref_text, ref.seconds,
                                                line.speed, settings.max_chunk_seconds)
            if line.duration is not None and len(line.chunked.chunks) != 1:
                raise WorkerError(INVALID_INPUT, (
                    f"text does not fit one chunk (it needs {len(line.chunked.chunks)}), "
                    "which a target duration asks for; shorten it or leave duration out"))
    script_lines.keyed(lines, request, checkpoint.identity(model), model.numerics())


def _segments(lines: List[Line], model, request: ScriptRequest, storage: Storage,
              tracker: jobs.JobTracker) -> tuple:
    """Every line's audio: from the store, else generated (and stored) now."""
    audios: Dict[int, StoredSegment] = {}
    for line in lines:
        found = segments.load(storage, line.key)
        if found is not None and len(found.chunks) == len(line.chunked.chunks):
            audios[line.index] = found
    reused = [line.index in audios for line in lines]
    tracker.advance(len(audios), len(lines))
    todo = [line for line in lines if line.index not in audios]
    if todo:
        _generate(todo, model, request, storage, tracker, audios, len(lines))
    return [audios[line.index] for line in lines], reused


def _generate(todo: List[Line], model, request: ScriptRequest, storage: Storage,
              tracker: jobs.JobTracker, audios: Dict[int, StoredSegment], total: int) -> None:
    plans, owner = [], []
    for line in todo:
        line_plans = _line_plans(line, model, request)
        plans += line_plans
        owner += [line.index] * len(line_plans)
    lines = {line.index: line for line in todo}
    spans = {index: [n for n, who in enumerate(owner) if who == index] for index in lines}

    def finished(group: list, waves: list) -> None:
        for index in dict.fromkeys(owner[n] for n in group):
            line, mine = lines[index], spans[index]
            if index not in audios and all(waves[n] is not None for n in mine):
                with script_lines.about_segment(line.index):
                    audios[line.index] = _assemble(line, [waves[n] for n in mine],
                                                   model.sample_rate)
                    segments.save(storage, line.key, audios[line.index])
        tracker.advance(len(audios), total)

    synthesis.render(model, plans, request.nfe_step, check=tracker.stop.check,
                     on_batch=finished)


def _line_plans(line: Line, model, request: ScriptRequest) -> list:
    ref = synthesis.reference(model, line.ref.voice.samples, line.ref.voice.sample_rate,
                              line.ref.ref_text)
    gen_frames = None
    if line.duration is not None:
        gen_frames = max(1, round(line.duration * model.sample_rate / model.hop_length))
    return synthesis.plan_chunks(
        model, ref, synthesis.package_ref_text(line.ref.ref_text),
        [chunk.text for chunk in line.chunked.chunks], line.seed, line.speed,
        cfg_strength=request.cfg_strength, gen_frames=gen_frames)


def _assemble(line: Line, waves: list, rate: int) -> StoredSegment:
    """A segment's chunks joined as a tts job joins them (cross-fades, its own pauses)."""
    if line.duration is not None:   # exactly the asked length, to the sample
        length = int(round(line.duration * rate))
        wave = np.zeros(length, dtype=np.float32)
        wave[:min(length, len(waves[0]))] = waves[0][:length]
        return StoredSegment(wave, rate, ((0.0, length / rate),))
    joined = track.join(waves, [chunk.pause_after for chunk in line.chunked.chunks],
                        line.chunked.lead_pause, rate)
    return StoredSegment(joined.samples, rate,
                         tuple((start / rate, end / rate) for start, end in joined.spans))


def _store(request: ScriptRequest, job_id: str, samples, rate: int, placed: list, timing,
           tracker: jobs.JobTracker, numerics: dict) -> dict:
    fmt = request.output_format
    audio_key = keys.job_audio(job_id, fmt)
    tracker.put(audio_key, audio.encode(samples, rate, fmt))
    described = [_segment_output(item, samples, rate, request, job_id, tracker)
                 for item in placed]
    stored = {"job_id": job_id, "status": jobs.COMPLETED, "audio_key": audio_key,
              "audio_format": fmt, "duration": round(len(samples) / rate, 3),
              "sample_rate": rate, "numerics": numerics, "segments": described}
    stored.update(timing_output.store(timing, request, job_id, tracker))
    return stored


def _segment_output(item, samples, rate: int, request: ScriptRequest, job_id: str,
                    tracker: jobs.JobTracker) -> dict:
    line = item.line
    out = {"index": line.index, "seed": line.seed, "voice": line.ref.voice.name,
           "ref_text_source": line.ref.source, "spoken_text": line.prepared.spoken_text,
           "start": round(item.start, 3), "end": round(item.end, 3),
           "duration": round(item.end - item.start, 3), "reused": item.reused}
    if request.segment_files:
        # From the track itself, so a segment file is exactly its stretch of the track.
        piece = samples[int(round(item.start * rate)):int(round(item.end * rate))]
        key = keys.job_segment(job_id, line.index, request.output_format)
        tracker.put(key, audio.encode(piece, rate, request.output_format))
        out["audio_key"] = key
    return out
