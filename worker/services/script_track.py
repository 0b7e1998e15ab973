"""A script's segments as one track: joined with their pauses, timed as one.

Segments are laid end to end with each one's ``pause_after`` of silence
between them (no cross-fade: a segment is a take of its own). Word timings
are found segment by segment, on the segment's own audio and chunks, and
shifted by where the segment starts in the track, so every word of every
segment appears once, in order, and none lands in a pause.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence

import numpy as np

from settings import Settings
from worker.core.timings import WordTiming
from worker.services import timing_output
from worker.services.script_lines import Line
from worker.services.segments import StoredSegment
from worker.timing.backend import TimingResult


@dataclass(frozen=True)
class Placed:
    line: Line
    audio: StoredSegment
    start: float      # seconds in the track
    reused: bool

    @property
    def end(self) -> float:
        return self.start + len(self.audio.samples) / self.audio.sample_rate


def place(lines: Sequence[Line], audios: Sequence[StoredSegment],
          reused: Sequence[bool], rate: int) -> List[Placed]:
    """Where each segment lies in the track."""
    placed, position = [], 0
    for line, segment, was_reused in zip(lines, audios, reused):
        placed.append(Placed(line, segment, position / rate, was_reused))
        position += len(segment.samples) + int(round(line.pause_after * rate))
    return placed


def join(placed: Sequence[Placed], rate: int) -> np.ndarray:
    pieces = []
    for item in placed:
        pieces += [item.audio.samples,
                   np.zeros(int(round(item.line.pause_after * rate)), dtype=np.float32)]
    return np.concatenate(pieces).astype(np.float32)


def time_track(placed: Sequence[Placed], method: str, settings: Settings,
               job_id: str) -> TimingResult:
    """Every written word of every segment, timed on the track's clock."""
    words: List[WordTiming] = []
    methods, reasons = [], []
    for item in placed:
        result = timing_output.time_words(
            item.audio.samples, item.audio.sample_rate, item.line.prepared,
            item.line.chunked, item.audio.chunks, method, settings, job_id)
        words += [WordTiming(word.word, word.start_time + item.start,
                             word.end_time + item.start, word.confidence)
                  for word in result.words]
        methods.append(result.method)
        if result.fallback_reason:
            reasons.append((item.line.index, result.fallback_reason))
    # One name for the whole track: the method most segments were timed by.
    chosen = max(dict.fromkeys(methods), key=methods.count)
    language = placed[0].line.prepared.language if placed else "en"
    return TimingResult(words, chosen, _reason(reasons, len(placed)), language)


def _reason(reasons: list, segments: int):
    """Why the requested method was not used: once when every segment says the
    same, else segment by segment."""
    if not reasons:
        return None
    distinct = list(dict.fromkeys(reason for _, reason in reasons))
    if len(distinct) == 1 and len(reasons) == segments:
        return distinct[0]
    return "; ".join(f"segment {index}: {reason}" for index, reason in reasons)
