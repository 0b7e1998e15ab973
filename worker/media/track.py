"""Chunk audio joined into one track: cross-fades between chunks, exact silences
where the text asks for a pause.

Chunks between two pauses form a stretch: they are joined with the package's
linear cross-fade, and, with ``remove_silence``, the stretch's long silences
are shortened. Stretches are then laid end to end with exactly the silence of
each pause between them (and before the first, and after the last), so a
pause is never shortened, never cross-faded and never inside a chunk.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np

from worker.media.audio import map_time, remove_silences

CROSS_FADE_S = 0.15


@dataclass(frozen=True)
class Track:
    samples: np.ndarray           # float32 mono
    spans: Tuple[Tuple[int, int], ...]   # each chunk's (start, end) sample in the track
    # Where each chunk's samples stop being only its own: the start of the
    # cross-fade into the next chunk (its end when a pause or nothing follows).
    settled: Tuple[int, ...]


def cross_fade(waves: Sequence[np.ndarray], overlap: int) -> tuple:
    """Join chunk waves with linear cross-fades; return the samples and each chunk's span."""
    out = np.asarray(waves[0], dtype=np.float32)
    spans = [(0, len(out))]
    for wave in waves[1:]:
        wave = np.asarray(wave, dtype=np.float32)
        fade = min(overlap, len(out), len(wave))
        start = len(out) - fade
        if fade > 0:
            ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
            mixed = out[start:] * (1 - ramp) + wave[:fade] * ramp
            out = np.concatenate([out[:start], mixed, wave[fade:]])
        else:
            out = np.concatenate([out, wave])
        spans.append((start, len(out)))
    return out, spans


def stretches(pauses_after: Sequence[float]) -> List[List[int]]:
    """Chunk indices grouped into runs that no pause separates."""
    runs, current = [], []
    for index, pause in enumerate(pauses_after):
        current.append(index)
        if pause > 0:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return runs


def join(waves: Sequence[np.ndarray], pauses_after: Sequence[float], lead_pause: float,
         rate: int, remove_silence: bool = False) -> Track:
    """The track of ``waves`` (one per chunk) with the pauses the text asks for."""
    overlap = int(CROSS_FADE_S * rate)
    pieces = [_silence(lead_pause, rate)]
    spans: List[Tuple[int, int]] = []
    settled: List[int] = []
    position = len(pieces[0])
    for run in stretches(pauses_after):
        samples, run_spans = cross_fade([waves[index] for index in run], overlap)
        if remove_silence:
            samples, run_spans = _squeezed(samples, run_spans, rate)
        for number, (start, end) in enumerate(run_spans):
            spans.append((position + start, position + end))
            following = run_spans[number + 1][0] if number + 1 < len(run_spans) else end
            settled.append(position + max(start, min(end, following)))
        pieces += [samples, _silence(pauses_after[run[-1]], rate)]
        position += len(samples) + len(pieces[-1])
    return Track(np.concatenate(pieces).astype(np.float32), tuple(spans), tuple(settled))


def settled(waves: Sequence[np.ndarray], pauses_after: Sequence[float], lead_pause: float,
            rate: int, complete: bool) -> np.ndarray:
    """The samples of the first chunks' track that no later chunk can change:
    all of them when no chunk follows (``complete``) or a pause does; else up
    to where the next chunk's cross-fade may begin."""
    samples = join(waves, pauses_after, lead_pause, rate).samples
    if complete or pauses_after[len(waves) - 1] > 0:
        return samples
    # A cross-fade changes at most the last CROSS_FADE_S of what it joins onto.
    return samples[:max(0, len(samples) - int(CROSS_FADE_S * rate))]


def _squeezed(samples: np.ndarray, spans: list, rate: int) -> tuple:
    squeezed, ranges = remove_silences(samples, rate)
    moved = [(int(round(map_time(start / rate, ranges, rate) * rate)),
              int(round(map_time(end / rate, ranges, rate) * rate))) for start, end in spans]
    return squeezed, moved


def _silence(seconds: float, rate: int) -> np.ndarray:
    return np.zeros(int(round(seconds * rate)), dtype=np.float32)
