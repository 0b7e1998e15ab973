"""Word spans: from loudness or recognized words to one time span per word of the text.

The numpy-only half of word timing. It finds where audio is loud, estimates
word spans from that, maps what an aligner or recognizer timed back onto the
words of the text (sequence alignment, so "3" heard as "three" still lands),
and turns spans with holes into the final list: every word once, in order,
inside the audio, the untimed ones placed between their neighbours with
``confidence`` None. The chain runs the aligners and calls these.
"""
from __future__ import annotations

import difflib
import itertools
import unicodedata
from typing import List, Optional, Sequence, Tuple

import numpy as np

from worker.core.timings import WordTiming

FRAME_SECONDS = 0.02
MIN_WORD_SECONDS = 0.06          # room an untimed word needs before it borrows from neighbours

Span = Tuple[float, float, Optional[float]]             # start, end, confidence
Recognized = Tuple[str, float, float, Optional[float]]  # word, start, end, confidence
Group = Tuple[int, int, float, float]                   # first word, end word, start s, end s


# ---- loudness -----------------------------------------------------------------

def frame_rms(audio: np.ndarray, frame: int) -> np.ndarray:
    count = audio.size // frame
    frames = audio[:count * frame].reshape(count, frame).astype(np.float64)
    return np.sqrt(np.mean(frames * frames, axis=1))


def speech_regions(audio: np.ndarray, rate: int, relative: float = 0.1) -> list:
    """``(start, end)`` of the stretches louder than ``relative`` times the loud
    frames (95th percentile), pauses under 0.2 s closed."""
    frame = max(int(FRAME_SECONDS * rate), 1)
    energy = frame_rms(audio, frame)
    if not energy.size or energy.max() <= 1e-4:
        return []
    active = energy > max(relative * float(np.percentile(energy, 95)), 1e-4)
    regions, seconds = [], frame / rate
    for loud, group in itertools.groupby(enumerate(active), key=lambda item: item[1]):
        if loud:
            indices = [index for index, _ in group]
            start, end = indices[0] * seconds, (indices[-1] + 1) * seconds
            if regions and start - regions[-1][1] < 0.2:
                regions[-1] = (regions[-1][0], end)
            else:
                regions.append((start, end))
    return [region for region in regions if region[1] - region[0] >= 0.06]


def quietest(audio: np.ndarray, low: float, high: float, rate: int) -> float:
    """The start in seconds of the quietest frame between ``low`` and ``high``."""
    frame = int(FRAME_SECONDS * rate)
    first = int(low * rate) // frame
    energy = frame_rms(audio[first * frame:int(high * rate)], frame)
    return (first + int(np.argmin(energy))) * frame / rate if energy.size else high


# ---- the baseline estimate --------------------------------------------------

def _normalize(word: str) -> str:
    folded = unicodedata.normalize("NFKC", word).casefold()
    return "".join(char for char in folded if char.isalnum())


def _weight(word: str) -> float:
    return float(len(_normalize(word)) or 1) + 1.0  # +1: a word's onset and release


def baseline_estimate(words: Sequence[str], audio: np.ndarray, sample_rate: int,
                      groups: Sequence[Group]) -> List[Span]:
    """Spans for ``words`` from where each group's stretch of audio is loud,
    shared by letter counts: the first estimate, kept as the fallback aligner's
    last resort and the baseline its tests compare with."""
    spans: List[Span] = []
    for first, end, start, stop in groups:
        piece = audio[int(start * sample_rate):int(stop * sample_rate)]
        regions = [(start + a, start + b) for a, b in speech_regions(piece, sample_rate)]
        spans.extend(_spread(words[first:end], regions or [(start, stop)]))
    return spans


def _spread(words: Sequence[str], regions: list) -> List[Span]:
    """Give each word the region its middle falls in on the speech-only clock,
    then share each region among its words by their lengths."""
    weights = [_weight(word) for word in words]
    total, speech = sum(weights), sum(b - a for a, b in regions)
    bounds = list(itertools.accumulate(b - a for a, b in regions))
    owners, done = [], 0.0
    for weight in weights:
        middle = (done + weight / 2) / total * speech
        owners.append(min(np.searchsorted(bounds, middle), len(regions) - 1))
        done += weight
    spans: List[Span] = []
    for index, group in itertools.groupby(range(len(words)), key=lambda n: owners[n]):
        members = list(group)
        spans.extend(_share([words[n] for n in members], *regions[index]))
    return spans


def _share(words: Sequence[str], start: float, end: float) -> List[Span]:
    """``[start, end]`` cut among ``words`` by length, with no confidence."""
    weights = [_weight(word) for word in words]
    total, spans, done = sum(weights), [], 0.0
    for weight in weights:
        spans.append((start + (end - start) * done / total,
                      start + (end - start) * (done + weight) / total, None))
        done += weight
    return spans


# ---- onto the words of the text, and the every-word guarantee ----------------

def map_onto(words: Sequence[str], recognized: Sequence[Recognized]) -> List[Optional[Span]]:
    """Sequence-align what a method timed with the words of the text.

    Equal words take their times; a run it heard differently ("3" as "three")
    shares the time of what it heard there; words it missed stay None.
    """
    heard = [item for item in recognized if _normalize(item[0])]
    # A word of symbols only ("&", "-") must never match anything.
    ours = [_normalize(word) or f"\0{index}" for index, word in enumerate(words)]
    matcher = difflib.SequenceMatcher(None, ours, [_normalize(item[0]) for item in heard],
                                      autojunk=False)  # autojunk drops frequent words
    spans: List[Optional[Span]] = [None] * len(words)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            spans[i1:i2] = [(start, end, confidence) for _, start, end, confidence
                            in heard[j1:j2]]
        elif tag == "replace":
            # Symbol-only words get no share: they are placed between neighbours later.
            spoken = [i for i in range(i1, i2) if _normalize(words[i])]
            shares = _share([words[i] for i in spoken], heard[j1][1],
                            max(heard[j2 - 1][2], heard[j1][1]))
            for index, span in zip(spoken, shares):
                spans[index] = span
    return spans


def _ordered(spans: Sequence[Optional[Span]], duration: float,
             floor: float = 0.0) -> List[Optional[list]]:
    """Clamp into the audio, drop times that go backwards, trim overlaps."""
    ordered: List[Optional[list]] = []
    last: Optional[list] = None
    for span in spans:
        if span is None:
            ordered.append(None)
            continue
        start = min(max(float(span[0]), floor), duration)
        end = min(max(float(span[1]), start), duration)
        if last is not None and start < last[0]:
            ordered.append(None)  # out of order: interpolate it instead
            continue
        if last is not None and last[1] > start:
            last[1] = start
        last = [start, end, span[2]]
        ordered.append(last)
    return ordered


def _fill_gap(words, ordered, first: int, end: int, duration: float,
              floor: float = 0.0) -> None:
    """Place the untimed words ``first:end`` between their timed neighbours,
    borrowing half of each neighbour when the gap is too short for them."""
    before = ordered[first - 1] if first > 0 else None
    after = ordered[end] if end < len(ordered) else None
    low = before[1] if before else floor
    high = after[0] if after else duration
    if high - low < MIN_WORD_SECONDS * (end - first):
        if before:
            low = before[1] = (before[0] + before[1]) / 2
        if after:
            high = after[0] = (after[0] + after[1]) / 2
    for index, span in enumerate(_share(words[first:end], low, max(high, low)), start=first):
        ordered[index] = list(span)


def finalize(words: Sequence[str], spans: Sequence[Optional[Span]],
             duration: float, floor: float = 0.0) -> List[WordTiming]:
    """Every word of ``words`` once, in order, inside ``[floor, duration]``."""
    ordered = _ordered(spans, duration, floor)
    index = 0
    while index < len(ordered):
        if ordered[index] is None:
            end = next((n for n in range(index, len(ordered)) if ordered[n] is not None),
                       len(ordered))
            _fill_gap(words, ordered, index, end, duration, floor)
            index = end
        index += 1
    return [WordTiming(word, start, end, confidence)
            for word, (start, end, confidence) in zip(words, ordered)]
