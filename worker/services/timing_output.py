"""Word timings of a job's audio, written as its timing file and output fields.

Shared by every action that times audio (tts, script, align): the chain of
aligners on what was said, mapped back to what was written, rendered in the
requested format, stored under the job, and summed up in the output.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

import timing_formats
from settings import Settings
from worker.core import keys
from worker.text.chunking import ChunkedText
from worker.text.frontend import PreparedText
from worker.timing import chain
from worker.timing.backend import TimingResult
from worker.timing.written import written_words

log = logging.getLogger(__name__)


@dataclass
class Timing:
    result: TimingResult
    body: str


def time_words(samples: np.ndarray, rate: int, prepared: PreparedText, chunked: ChunkedText,
               times: Sequence[tuple], method: str, settings: Settings,
               job_id: str) -> TimingResult:
    """The written words of ``prepared`` timed in ``samples``, where chunk n of
    ``chunked`` lies at ``times[n]`` (start, end seconds)."""
    spans = [chain.ChunkSpan(chunk.text, start, end)
             for chunk, (start, end) in zip(chunked.chunks, times)]
    spoken = " ".join(chunk.text for chunk in chunked.chunks)
    result = chain.compute_word_timings(
        spoken, samples, rate, spans, prepared.language, method, settings,
        written=written_words(prepared, chunked, times))
    if result.fallback_reason:
        log.info("job %s: timings by %s (%s)", job_id, result.method, result.fallback_reason)
    return result


def time_speech(samples: np.ndarray, rate: int, prepared: PreparedText, chunked: ChunkedText,
                times: Sequence[tuple], request, settings: Settings, job_id: str) -> Timing:
    """time_words, rendered as the requested file."""
    result = time_words(samples, rate, prepared, chunked, times, request.timing_method,
                        settings, job_id)
    return Timing(result, render(result, request, job_id))


def render(result: TimingResult, request, job_id: str) -> str:
    return timing_formats.render(request.timing_format, result.words, job_id=job_id,
                                 method=result.method, language=result.language,
                                 cues=request.subtitle_cues, subtitle=request.subtitle)


def store(timing: Optional[Timing], request, job_id: str, tracker) -> dict:
    """Put the timing file and return the output fields that describe it."""
    if timing is None:
        return {}
    key = keys.job_timings(job_id, request.timing_format)
    tracker.put(key, timing.body.encode("utf-8"))
    fields = {
        "timing_method": timing.result.method,
        "timing_fallback_reason": timing.result.fallback_reason,
        "language": timing.result.language, "timing_format": request.timing_format,
        "timing_key": key, "word_count": len(timing.result.words),
    }
    if request.timing_inline:
        fields["word_timings"] = [word.to_dict() for word in timing.result.words]
    return fields
