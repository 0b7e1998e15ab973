"""Long audio in pieces: cuts at silences, each word of the text in the piece it is spoken in.

An aligner that takes a piece at a time (WhisperX on a caller's recording of
up to 30 minutes) must be given the right words for each piece, or it drifts.
The fallback aligner places every word over the whole recording first; then
the audio is cut, piece after piece, at the quietest gap between two placed
words shortly before each piece would grow too long, and every word goes to
the piece its placed middle falls in. The result has the ``groups`` shape of
``backend.chunk_groups`` (and ``as_chunks`` turns it into chunk spans for
``chain.compute_word_timings``).
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np

from worker.timing.backend import ChunkSpan
from worker.timing.fallback import estimate
from worker.timing.landmarks import HOP, loudness_db
from worker.timing.spans import Group, Span

MAX_PIECE_SECONDS = 30.0
SEARCH_SHARE = 1 / 3         # a cut is looked for in the last third of a piece...
SEARCH_SECONDS = 10.0        # ...at most this long
QUIET_FRAMES = 10            # the quietest 100 ms of a gap decide how quiet it is


def _quiet_at(db: np.ndarray, low: float, high: float) -> tuple:
    """``(level, time)``: the loudness of the quietest ~100 ms between ``low``
    and ``high`` seconds and the middle of it."""
    first, last = int(low / HOP), max(int(np.ceil(high / HOP)), int(low / HOP) + 1)
    window = db[first:min(last, db.size)]
    if not window.size:
        return np.inf, (low + high) / 2
    width = min(QUIET_FRAMES, window.size)
    levels = np.convolve(window, np.ones(width) / width, mode="valid")
    best = int(np.argmin(levels))
    return float(levels[best]), (first + best + width / 2) * HOP


def _cut(db: np.ndarray, spans: Sequence[Span], low: float, high: float) -> float:
    """Where to end a piece between ``low`` and ``high``: the middle of the
    quietest gap between two placed words there, else the quietest moment."""
    best: Optional[tuple] = None
    starts = np.array([span[0] for span in spans])
    first = max(int(np.searchsorted(starts, low)) - 1, 0)
    last = int(np.searchsorted(starts, high, side="right")) + 1
    nearby = spans[first:last]
    for (_, end, _), (start, _, _) in zip(nearby, nearby[1:]):
        gap_low, gap_high = max(end, low), min(max(start, end), high)
        if gap_low > gap_high or start < low:
            continue
        level, at = _quiet_at(db, gap_low, gap_high)
        if best is None or level < best[0]:
            best = (level, min(max(at, gap_low), gap_high))
    return best[1] if best else _quiet_at(db, low, high)[1]


def cut_points(db: np.ndarray, spans: Sequence[Span], duration: float,
               max_seconds: float) -> List[float]:
    """Piece boundaries from 0 to ``duration``, no piece longer than ``max_seconds``."""
    cuts, reach = [0.0], min(SEARCH_SECONDS, max_seconds * SEARCH_SHARE)
    while duration - cuts[-1] > max_seconds:
        limit = cuts[-1] + max_seconds
        cuts.append(_cut(db, spans, limit - reach, limit))
    return cuts + [duration]


def pieces(words: Sequence[str], audio: np.ndarray, sample_rate: int,
           max_seconds: float = MAX_PIECE_SECONDS, language: str = "",
           spans: Optional[Sequence[Span]] = None) -> List[Group]:
    """``(first word, end word, start s, end s)`` per piece of ``audio`` (float32
    mono), pieces at most ``max_seconds`` long and cut at silences, every word
    in exactly one piece, in order; pieces no word falls in are left out.
    ``spans`` (one per word over the whole audio) may be given; else the
    fallback aligner places the words."""
    if max_seconds <= 2 * HOP:
        raise ValueError(f"max_seconds must be more than {2 * HOP} s, not {max_seconds}")
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    duration = audio.size / float(sample_rate)
    if not words:
        return []
    if spans is None:
        spans = estimate(words, audio, sample_rate, [(0, len(words), 0.0, duration)], language)
    cuts = cut_points(loudness_db(audio, sample_rate), spans, duration, max_seconds)
    middles = [(start + end) / 2 for start, end, _ in spans]
    # A word belongs to the piece its middle is in; sorting keeps the order if
    # spans ever overlap.
    owners = np.maximum.accumulate(np.searchsorted(cuts, middles, side="right") - 1)
    owners = np.clip(owners, 0, len(cuts) - 2)
    groups: List[Group] = []
    for piece in range(len(cuts) - 1):
        members = np.flatnonzero(owners == piece)
        if members.size:
            groups.append((int(members[0]), int(members[-1]) + 1, cuts[piece], cuts[piece + 1]))
    return groups


def as_chunks(words: Sequence[str], groups: Sequence[Group]) -> List[ChunkSpan]:
    """The pieces as chunk spans (their words and times), the form
    ``chain.compute_word_timings`` takes. The words are joined by spaces:
    ``split_words`` then gives back exactly these words, which ``join_words``
    does not promise (``AI。 Mixed`` joins as ``AI。Mixed``, one word)."""
    return [ChunkSpan(" ".join(words[first:end]), start, stop)
            for first, end, start, stop in groups]
