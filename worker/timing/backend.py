"""What every timing backend is given and gives back: the generated chunks,
the audio at the aligners' rate, and the outcome of the chain."""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from worker.text.words import split_words

log = logging.getLogger(__name__)

ALIGN_RATE = 16000               # what wav2vec2 aligners and our Google requests use


@dataclass(frozen=True)
class ChunkSpan:
    """One generated chunk: its text and where it lies in the final audio."""
    text: str
    start: float
    end: float


@dataclass
class TimingResult:
    words: list                     # list[WordTiming]: exactly the words of the text
    method: str                     # "whisperx" | "google" | "estimate"
    fallback_reason: Optional[str]  # None, or why the requested method was not used
    language: str


@dataclass(frozen=True)
class WrittenWords:
    """The caller's words, when the audio says spoken forms of them (the text
    front end read "$45" as "forty-five dollars"): timings are found for the
    spoken words and listed for the written ones."""
    words: tuple                    # the words as written
    to_written: Callable            # spans per spoken word -> spans per written word
    # (first, end, start s, end s): written words and the stretch of audio that
    # says them (a chunk, or chunks that share a word); together, every word once.
    groups: tuple


class MethodUnavailable(Exception):
    """The method cannot run here (not installed, no credentials): a fallback, not a failure."""


def resample(audio: np.ndarray, rate: int) -> np.ndarray:
    if rate == ALIGN_RATE:
        return audio
    from scipy.signal import resample_poly

    common = math.gcd(int(rate), ALIGN_RATE)
    return resample_poly(audio, ALIGN_RATE // common, int(rate) // common).astype(np.float32)


def chunk_groups(words: Sequence[str], chunks: Sequence[ChunkSpan], duration: float) -> list:
    """``(first word, end word, start s, end s)`` per chunk when the chunks hold
    exactly the words of the text, else one group for the whole audio."""
    per_chunk = [split_words(chunk.text) for chunk in chunks]
    if not chunks or [w for chunk_words in per_chunk for w in chunk_words] != list(words):
        if chunks:
            log.warning("chunk texts do not hold the words of the text; timing it as one piece")
        return [(0, len(words), 0.0, duration)]
    groups, first = [], 0
    for chunk, chunk_words in zip(chunks, per_chunk):
        start = min(max(chunk.start, 0.0), duration)
        groups.append((first, first + len(chunk_words), start,
                       min(max(chunk.end, start), duration)))
        first += len(chunk_words)
    return [group for group in groups if group[1] > group[0]]
