"""The weightless fallback aligner: words matched to pauses and dips by dynamic programming.

Numpy only, no model, nothing downloaded. Every word has an expected length
from its letters (``lengths``), scaled by the speaking rate measured on the
audio; the audio has candidate boundaries (``landmarks``): pauses, and
places inside speech where the loudness may dip. The alignment picks one
boundary between each two words, in order, minimizing how far each word's
speech length strays from its expected length (log ratio) plus what the
boundaries cost: a pause inside a word costs more the longer it is, a
boundary inside speech costs less where the loudness dips, and in running
speech a pause after a word that ends a phrase is cheap. So a stretch of
speech may hold several words, a word may hold a short pause (a stop's
closure), and one badly expected length does not shift the rest.

Every place a word spans is charged as the search passes it, so states at
different times stay comparable; the search keeps only the states near the
best one for each word (a beam), which keeps 30 minutes to seconds.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

from worker.timing.landmarks import Landmarks, find_landmarks
from worker.timing.lengths import spoken_length
from worker.timing.spans import Group, Span, baseline_estimate

log = logging.getLogger(__name__)

SOFT = 0.06          # seconds added to both lengths before their ratio: short words vary more
MIN_SHARE = 0.2      # a word has at least this share of its expected length...
MIN_SECONDS = 0.02
MAX_SHARE = 3.5      # ...and at most this share, plus LATITUDE seconds
LATITUDE = 0.6
BEAM = 8.0           # states costlier than the word's best by this are dropped
BLOCK_CELLS = 1 << 21    # (end, start) pairs weighed at once
MAX_CELLS = 60_000_000   # a word with more pairs than this is not aligned
CLOSURE = 0.04       # a pause this short may be a stop's closure inside a word...
RUNNING_CLOSURE = 0.15  # ...or this short in running speech
CLEAR_PAUSE = 0.08   # a pause this long is clear...
PAUSED_STYLE = 0.7   # ...and words said one at a time have one after this share of them
PAUSE_CAP = 0.3      # a pause inside a word costs more up to this long
PHRASE_PAUSE = 0.3   # a pause after a phrase's last word is cheaper up to this long
# Punctuation after which speakers pause (Latin and CJK forms).
_PHRASE_MARKS = frozenset(".,;:!?\u2026\u3001\u3002\uff0c\uff1b\uff1a\uff01\uff1f")
_CLOSERS = "\"')]}\u201d\u2019\u300d\u300f\uff09"


@dataclass(frozen=True)
class Weights:
    """How much each piece of evidence counts. Measured on espeak-ng speech
    in nine voices and seven languages (words said one at a time, the same
    with noise, running speech); the results hold over a broad range
    around these values."""
    spread: float = 0.3         # how far (log ratio) a length strays, typically
    tolerance: float = 2.0      # how soon a stray stops costing quadratically
    grid: float = 3.0           # a boundary inside speech where the loudness does not dip...
    dip: float = 0.1            # ...less this per dB it dips
    closure: float = 3.0        # a boundary at a pause (its length counts through pause_inside)
    pause_inside: float = 60.0  # per second of pause inside a word, beyond a closure
    phrase_end: float = 20.0    # taken off per second of pause after a phrase's last word


WEIGHTS = Weights()


@dataclass
class _Column:
    """The states after one word: best cost of ending at each landmark
    ``first..first+len-1`` and the landmark the word started at."""
    first: int
    cost: np.ndarray
    came_from: np.ndarray


@dataclass
class _Costs:
    """Per landmark: the cost of a boundary there (``phrase``: after a phrase's
    last word), the inside costs summed up to and including it, and how many
    costly pauses lie after it and the cheapest of them (for ``_ahead``)."""
    boundary: np.ndarray
    phrase: np.ndarray
    through: np.ndarray
    pauses_after: np.ndarray
    cheapest_after: np.ndarray


def running_speech(marks: Landmarks, words: int) -> float:
    """How much this is running speech (1) rather than words said one at a
    time (0), from the share of word boundaries that could have a clear pause.

    In running speech most boundaries have no pause, a long closure (Italian
    ``tt``, a stop before a stressed vowel) is likelier than a pause inside a
    phrase, and pauses come after phrases; said one at a time, every pause
    is a boundary and punctuation tells nothing more."""
    clear = np.count_nonzero(marks.pause >= CLEAR_PAUSE)
    paused = clear / max(words - 1, 1)
    return float(np.clip((PAUSED_STYLE - paused) / PAUSED_STYLE, 0.0, 1.0))


def _costs(marks: Landmarks, weights: Weights, words: int) -> _Costs:
    running = running_speech(marks, words)
    at_pause = marks.pause > 0
    boundary = np.where(at_pause, weights.closure, weights.grid - weights.dip * marks.dip)
    boundary[[0, -1]] = 0.0
    allowance = CLOSURE + running * (RUNNING_CLOSURE - CLOSURE)
    inside = weights.pause_inside * np.clip(marks.pause - allowance, 0.0, PAUSE_CAP)
    phrase = boundary - running * weights.phrase_end * np.minimum(marks.pause, PHRASE_PAUSE)
    costly = np.where(inside > 0, inside, np.inf)
    pauses_after = np.concatenate((np.cumsum((inside > 0)[::-1])[::-1][1:], [0]))
    cheapest_after = np.concatenate((np.minimum.accumulate(costly[::-1])[::-1][1:], [np.inf]))
    cheapest_after[pauses_after == 0] = 0.0
    return _Costs(boundary, phrase, np.cumsum(inside), pauses_after, cheapest_after)


def _ahead(costs: _Costs, ends: np.ndarray, words_left: int) -> np.ndarray:
    """A cost the words after a state cannot escape: pauses beyond one per
    boundary still to come must fall inside words. The beam compares states
    with it, so a state that puts off such a cost is not kept for looking cheap."""
    excess = np.maximum(costs.pauses_after[ends] - max(words_left - 1, 0), 0)
    return excess * costs.cheapest_after[ends]


def _length_cost(speech: np.ndarray, expected: float, weights: Weights) -> np.ndarray:
    """Grows with the square of the log ratio at first, then only slowly: an
    expected length can be far off (a number, a name), and one such word must
    not outweigh the pauses around it."""
    strayed = (np.log((speech + SOFT) / (expected + SOFT)) / weights.spread) ** 2
    return weights.tolerance * np.log1p(strayed / weights.tolerance)


def _reach(prev: _Column, clock: np.ndarray, expected: float, final: bool) -> tuple:
    """The landmarks the word may end at, and for each the range it may start in."""
    last = clock.size - 1
    low, high = prev.first, prev.first + prev.cost.size - 1
    shortest = max(MIN_SECONDS, MIN_SHARE * expected)
    longest = np.inf if final else MAX_SHARE * expected + LATITUDE
    if final:
        ends = np.array([last])
    else:
        begin = max(int(np.searchsorted(clock, clock[low] + shortest)), low + 1)
        stop = min(int(np.searchsorted(clock, clock[high] + longest, side="right")), last)
        ends = np.arange(begin, stop)
    froms_low = np.maximum(np.searchsorted(clock, clock[ends] - longest), low)
    froms_high = np.minimum(ends - 1, high)
    if not final:
        froms_high = np.minimum(np.searchsorted(clock, clock[ends] - shortest, side="right") - 1,
                                froms_high)
    return ends, froms_low, froms_high


def _best_starts(prev: _Column, clock: np.ndarray, costs: _Costs, ends: np.ndarray,
                 froms_low: np.ndarray, froms_high: np.ndarray, expected: float,
                 weights: Weights) -> tuple:
    """For each landmark in ``ends``: the cheapest cost of the word ending
    there, and where it starts. Rows go in blocks to bound the memory."""
    width = int((froms_high - froms_low).max()) + 1
    block = max(1, BLOCK_CELLS // width)
    cost, came_from = np.empty(ends.size), np.empty(ends.size, dtype=int)
    for top in range(0, ends.size, block):
        rows = slice(top, top + block)
        froms = froms_low[rows, None] + np.arange(width)[None, :]
        valid = froms <= froms_high[rows, None]
        froms = np.where(valid, froms, prev.first)
        total = (prev.cost[froms - prev.first]
                 + costs.through[ends[rows] - 1][:, None] - costs.through[froms]
                 + _length_cost(clock[ends[rows]][:, None] - clock[froms], expected, weights))
        total[~valid] = np.inf
        pick = np.argmin(total, axis=1)
        lines = np.arange(pick.size)
        cost[rows], came_from[rows] = total[lines, pick], froms[lines, pick]
    return cost, came_from


def _step(prev: _Column, clock: np.ndarray, costs: _Costs, expected: float, phrase_end: bool,
          words_left: int, weights: Weights) -> Optional[_Column]:
    """The states after the next word, from the states ``prev`` before it;
    None when there are none, or too many to weigh (far more audio than the
    words could fill: the caller spreads them instead)."""
    ends, froms_low, froms_high = _reach(prev, clock, expected, words_left == 0)
    if not ends.size or (froms_high < froms_low).all():
        return None
    if ends.size * (int((froms_high - froms_low).max()) + 1) > MAX_CELLS:
        return None
    cost, came_from = _best_starts(prev, clock, costs, ends, froms_low, froms_high,
                                   expected, weights)
    cost += (costs.phrase if phrase_end else costs.boundary)[ends]
    return _prune(_Column(int(ends[0]), cost, came_from), _ahead(costs, ends, words_left))


def _prune(column: _Column, ahead: np.ndarray) -> Optional[_Column]:
    judged = column.cost + ahead
    best = float(np.min(judged))
    if not np.isfinite(best):
        return None
    kept = np.flatnonzero(judged <= best + BEAM)
    low, high = int(kept[0]), int(kept[-1]) + 1
    return _Column(column.first + low, column.cost[low:high], column.came_from[low:high])


def phrase_end(word: str) -> bool:
    """Whether ``word`` ends a sentence or clause (a pause after it is likely)."""
    stripped = word.rstrip(_CLOSERS)
    return bool(stripped) and stripped[-1] in _PHRASE_MARKS


def align_lengths(lengths: Sequence[float], marks: Landmarks, weights: Weights = WEIGHTS,
                  phrase_ends: Optional[Sequence[bool]] = None) -> Optional[List[tuple]]:
    """``(start, end)`` for words of these expected lengths (any unit) in the
    speech ``marks`` describes, or None when they cannot be fitted.
    ``phrase_ends`` flags the words a pause is likely after."""
    if not lengths or marks.speech <= 0 or marks.clock.size < len(lengths) + 1:
        return None
    rate = marks.speech / float(sum(lengths))
    costs = _costs(marks, weights, len(lengths))
    phrase_ends = phrase_ends or [False] * len(lengths)
    columns = [_Column(0, np.zeros(1), np.zeros(1, int))]
    for index, length in enumerate(lengths):
        column = _step(columns[-1], marks.clock, costs, rate * length, phrase_ends[index],
                       len(lengths) - 1 - index, weights)
        if column is None:
            return None
        columns.append(column)
    bounds = [marks.clock.size - 1]
    for column in reversed(columns[1:]):
        bounds.append(int(column.came_from[bounds[-1] - column.first]))
    bounds.reverse()
    return [(float(marks.start_at[a]), float(marks.end_at[b]))
            for a, b in zip(bounds, bounds[1:])]


def _group_spans(words: Sequence[str], piece: np.ndarray, rate: int, start: float,
                 language: str) -> Optional[List[Span]]:
    spoken = [index for index, word in enumerate(words) if spoken_length(word, language) > 0]
    marks = find_landmarks(piece, rate, offset=start)
    if marks is None or not spoken:
        return None
    lengths = [spoken_length(words[index], language) for index in spoken]
    timed = align_lengths(lengths, marks, WEIGHTS, [phrase_end(words[index]) for index in spoken])
    if timed is None:
        return None
    spans: List[Span] = []
    at, timed_words = timed[0][0], dict(zip(spoken, timed))
    for index in range(len(words)):
        if index in timed_words:
            begin, at = timed_words[index]
            spans.append((begin, at, None))
        else:  # a word of symbols is not spoken: no time of its own, where it stands
            spans.append((at, at, None))
    return spans


def estimate(words: Sequence[str], audio: np.ndarray, sample_rate: int,
             groups: Sequence[Group], language: str = "") -> List[Span]:
    """One ``(start, end, None)`` span per word, each group of words aligned
    within its stretch of audio (``groups`` as ``backend.chunk_groups`` makes
    them). A group the alignment cannot fit is spread as before."""
    spans: List[Span] = []
    for first, end, start, stop in groups:
        piece = audio[int(start * sample_rate):int(stop * sample_rate)]
        group = _group_spans(words[first:end], piece, sample_rate, start, language)
        if group is None:
            log.info("fallback alignment could not fit words %d-%d; spreading them", first, end)
            group = baseline_estimate(words[first:end], audio, sample_rate,
                                      [(0, end - first, start, stop)])
        spans.extend(group)
    return spans
