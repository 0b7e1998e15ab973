"""Subtitle cues from word timings: what a subtitle editor would ship.

``subtitle_cues: "phrase"`` cuts the words into cues of up to ``max_lines``
lines of ``max_chars_per_line`` display columns (CJK and other wide
characters take 2), and ``"word"`` gives one cue per word. Either way the
cues are then timed: on screen at least ``min_duration`` (and, for phrases,
long enough to read at ``max_cps``) where the gap after the cue allows,
never over the next cue, optionally held until the next cue, and snapped to
frames with a 2-frame gap between cues.

How phrase cues are cut: not a greedy fill but a small dynamic programme
over the break points between words. Each gap between words has a kind
(sentence end, clause punctuation, before a function word, plain, or
"bound": after an article, preposition or conjunction, or before a lone
punctuation mark); a cue or a
line ending there costs according to its kind, an uneven pair of lines
costs, a cue that asks for more than ``max_cps`` costs, and every cue costs
a little so that cues fill up. Over-limit cues are never considered: more
lines or words than allowed, more than ``max_duration`` of speech, or a pause
of 1 s or more inside. The programme picks the cheapest cut of each stretch
of speech between pauses, and within each cue the cheapest line layout with
the fewest lines that fit. A single word always fits (on a line of its own,
however long), so every word list has a cut.

Standard library only: no torch, no numpy.
"""
from __future__ import annotations

import bisect
import math
import unicodedata
from dataclasses import dataclass
from fractions import Fraction
from typing import List, Optional, Sequence, Tuple

from worker.core.timings import WordTiming
from worker.text.function_words import binds_forward
from worker.text.words import join_words, separator
from worker.timing.subtitle_options import SubtitleOptions

PAUSE = 1.0  # seconds of silence that no cue spans
SENTENCE_ENDS = (".", "!", "?", "\u2026", "\u3002", "\uff01", "\uff1f")
CLAUSE_ENDS = (",", ";", ":", "\u2014", "\u2013", "\u3001", "\uff0c", "\uff1b", "\uff1a")
_CLOSING = "\"')]}\u00bb\u201d\u2019\u300d\u300f\uff09"
_BRACKETS = "\")]}\u00bb\u201d\u300d\u300f\uff09"

# Kinds of break point, best first; the tables below are indexed by kind.
# PHRASE is a plain break before a function word: a new phrase starts there.
SENTENCE, CLAUSE, PHRASE, PLAIN, BOUND = range(5)
_CUE_END = (0.0, 1.0, 2.5, 4.0, 25.0)
# A line break at a sentence end is good, but a sentence end in mid-line costs
# _MID_SENTENCE; every sentence end inside a cue is charged that and a line
# break there refunds it.
_MID_SENTENCE = 6.0
_LINE_END = (3.0 - _MID_SENTENCE, 0.5, 1.5, 3.0, 25.0)
_PER_CUE = 4.0       # fewer, fuller cues unless a better break is near
_ORPHAN = 4.0        # a lone word cut off from its phrase
_BALANCE = 3.0       # per line-width of difference between the lines of a cue
_PER_CPS = 1.0       # per character per second over max_cps
_MAX_CPS_COST = 100.0
_FRAME_GAP = 2       # frames between cues when snapped


@dataclass(frozen=True)
class Cue:
    """One subtitle: ``words`` = (first, end) into the word list, end exclusive;
    ``line_starts`` = the index of the first word of each line."""

    start: float
    end: float
    lines: List[str]
    words: Tuple[int, int]
    line_starts: Tuple[int, ...]

    @property
    def text(self) -> str:
        return join_words(self.lines)


def display_width(text: str) -> int:
    """Columns ``text`` takes: wide (CJK, fullwidth, emoji) characters 2,
    combining marks 0, others 1."""
    width = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def _kind(word: str, following: str, language: Optional[str]) -> int:
    """The kind of the break point between ``word`` and ``following``."""
    if not any(char.isalnum() for char in following) and following[0] not in "\"'(\u00ab\u201c":
        return BOUND  # a lone "—" or French " :" stays with the word before it
    if binds_forward(word, language):
        return BOUND
    core = word.rstrip(_CLOSING)
    if core.endswith(SENTENCE_ENDS):
        return SENTENCE
    if core.endswith(CLAUSE_ENDS) or word[-1] in _BRACKETS:
        return CLAUSE
    return PHRASE if binds_forward(following, language) else PLAIN


class _Text:
    """The word list as the programme reads it; built once per call."""

    def __init__(self, words: Sequence[WordTiming], options: SubtitleOptions,
                 language: Optional[str]):
        texts = [word.word for word in words]
        self.options, self.count = options, len(texts)
        self.texts = texts
        self.starts = [word.start_time for word in words]
        self.ends = [max(word.start_time, word.end_time) for word in words]
        self.seps = [0] + [len(separator(a, b)) for a, b in zip(texts, texts[1:])]
        self.prefix = [0]
        for sep, text in zip(self.seps, texts):
            self.prefix.append(self.prefix[-1] + sep + display_width(text))
        limit = options.max_chars_per_line
        # far[i]: the end of the longest line that starts at word i.
        self.far = [max(i + 1, bisect.bisect_right(self.prefix, limit + self.prefix[i]
                                                   + self.seps[i]) - 1)
                    for i in range(len(texts))]
        self.kinds = [_kind(a, b, language) for a, b in zip(texts, texts[1:])]
        self.sentences = [0]
        for kind in self.kinds:
            self.sentences.append(self.sentences[-1] + (kind == SENTENCE))

    def width(self, first: int, end: int) -> int:
        return self.prefix[end] - self.prefix[first] - self.seps[first]

    def line_count(self, first: int, end: int) -> int:
        """Lines a greedy fill needs (the fewest possible), at most max_lines + 1."""
        lines = 0
        while first < end and lines <= self.options.max_lines:
            first, lines = self.far[first], lines + 1
        return lines

    def split_points(self, first: int, end: int) -> range:
        """Where the second line of a two-line layout of [first, end) may start."""
        low = bisect.bisect_left(self.far, end, first + 1, end)
        return range(max(first + 1, low), min(self.far[first], end - 1) + 1)


def _line_floor(lines: int, sentences: int) -> float:
    """The least the line breaks of a layout can cost, balance aside."""
    breaks = lines - 1
    at_sentences = min(sentences, breaks)
    return _LINE_END[SENTENCE] * at_sentences + _LINE_END[CLAUSE] * (breaks - at_sentences)


def _layout(text: _Text, first: int, end: int, lines: int,
            ceiling: float = math.inf) -> Tuple[float, Tuple[int, ...]]:
    """The cheapest way to lay [first, end) out in exactly ``lines`` lines, if
    it costs under ``ceiling``: (cost, index of the first word of each later
    line); (inf, ()) when none does. Inlined arithmetic: this is the hot loop."""
    if lines == 1:
        return 0.0, ()
    prefix, seps, kinds = text.prefix, text.seps, text.kinds
    scale = _BALANCE / text.options.max_chars_per_line
    base = prefix[first] + seps[first]
    best, breaks = ceiling, ()
    if lines == 2:
        for cut in text.split_points(first, end):
            top, bottom = prefix[cut] - base, prefix[end] - prefix[cut] - seps[cut]
            cost = _LINE_END[kinds[cut - 1]] + scale * abs(top - bottom)
            if cost < best:
                best, breaks = cost, (cut,)
        return (best, breaks) if breaks else (math.inf, ())
    third = (prefix[end] - base) / 3
    floor = _LINE_END[SENTENCE]
    for cut in range(first + 1, text.far[first] + 1):
        top = prefix[cut] - base
        # With the first line d columns off a third, max - min is at least 1.5 d.
        spread = scale * 1.5 * max(0.0, abs(top - third) - 1)
        head = _LINE_END[kinds[cut - 1]]
        if head + floor + spread >= best:
            if top > third and 2 * floor + spread >= best:
                break
            continue
        for second in text.split_points(cut, end):
            middle = prefix[second] - prefix[cut] - seps[cut]
            bottom = prefix[end] - prefix[second] - seps[second]
            cost = head + _LINE_END[kinds[second - 1]] + scale * (
                max(top, middle, bottom) - min(top, middle, bottom))
            if cost < best:
                best, breaks = cost, (cut, second)
    return (best, breaks) if breaks else (math.inf, ())


def _reading_cost(text: _Text, first: int, end: int) -> float:
    """What a cue costs for asking more than max_cps in the time it can stay."""
    options = text.options
    room = text.starts[end] - text.starts[first] if end < text.count else math.inf
    room = max(min(room, options.max_duration), 0.05)
    rate = text.width(first, end) / room
    return min(_PER_CPS * max(0.0, rate - options.max_cps), _MAX_CPS_COST)


def _cue_cost(text: _Text, first: int, end: int, stretch: Tuple[int, int]) -> float:
    """What a cue costs, its line layout aside."""
    cost = _PER_CUE + _reading_cost(text, first, end)
    cost += _MID_SENTENCE * (text.sentences[end - 1] - text.sentences[first])
    if end < stretch[1]:
        cost += _CUE_END[text.kinds[end - 1]]
    if end - first == 1 and stretch[1] - stretch[0] > 1 and text.options.max_words != 1:
        cost += _ORPHAN
    return cost


def _candidates(text: _Text, end: int, stretch_start: int):
    """(first, lines) of every cue ending at ``end`` within the limits, longest last."""
    options, latest = text.options, text.ends[end - 1]
    for first in range(end - 1, stretch_start - 1, -1):
        latest = max(latest, text.ends[first])
        words = end - first
        if words > 1:
            if options.max_words is not None and words > options.max_words:
                return
            if latest - text.starts[first] > options.max_duration:
                return
        lines = text.line_count(first, end)  # 1 for a lone word, however wide
        if lines > options.max_lines:
            return
        yield first, lines


def _best_last_cue(text: _Text, end: int, stretch: Tuple[int, int], best: dict):
    """(total cost, (first, breaks)) of the cheapest cut of the stretch up to
    ``end``. Branch and bound: layouts, the costly part, are worked out in
    order of a floor under the total, until no floor can beat the best."""
    scored = []
    for first, lines in _candidates(text, end, stretch[0]):
        partial = best[first][0] + _cue_cost(text, first, end, stretch)
        sentences = text.sentences[end - 1] - text.sentences[first]
        scored.append((partial + _line_floor(lines, sentences), partial, first, lines))
    scored.sort()
    winner = (math.inf, None)
    for floor, partial, first, lines in scored:
        if floor >= winner[0]:
            break
        layout, breaks = _layout(text, first, end, lines, winner[0] - partial)
        if partial + layout < winner[0]:
            winner = (partial + layout, (first, breaks))
    return winner


def _cut_stretch(text: _Text, stretch: Tuple[int, int]) -> List[Tuple[int, int, tuple]]:
    """The cheapest cut of the words of ``stretch`` into cues: (first, end, breaks)."""
    begin, finish = stretch
    best = {begin: (0.0, None)}
    for end in range(begin + 1, finish + 1):
        best[end] = _best_last_cue(text, end, stretch, best)
    cues, end = [], finish
    while end > begin:
        first, breaks = best[end][1]
        cues.append((first, end, breaks))
        end = first
    return cues[::-1]


def _stretches(text: _Text) -> List[Tuple[int, int]]:
    """Runs of words with no pause of PAUSE seconds or more between them."""
    cuts, latest = [0], -math.inf
    for index in range(text.count):
        if index and text.starts[index] - latest >= PAUSE:
            cuts.append(index)
        latest = max(latest, text.ends[index])
    return list(zip(cuts, cuts[1:] + [text.count]))


def build_cues(words: Sequence[WordTiming], mode: str = "phrase",
               options: Optional[SubtitleOptions] = None,
               language: Optional[str] = None) -> List[Cue]:
    """The cues of ``words`` (as written, in order) for ``mode`` ``word`` or
    ``phrase``; ``language`` picks the function words lines should not end on."""
    options = options or SubtitleOptions()
    text = _Text(words, options, language)
    if mode == "word":
        spans = [(index, index + 1, ()) for index in range(text.count)]
    elif mode == "phrase":
        spans = [cue for stretch in _stretches(text) for cue in _cut_stretch(text, stretch)]
    else:
        raise ValueError(f"subtitle cues {mode!r} is not one of word, phrase")
    times = _display_times(text, spans, phrase=mode == "phrase")
    if options.frame_rate is not None:
        times = _snap(times, options, phrase=mode == "phrase")
    cues = []
    for (first, end, breaks), (start, stop, _) in zip(spans, times):
        bounds = (first, *breaks, end)
        lines = [join_words(text.texts[a:b]) for a, b in zip(bounds, bounds[1:])]
        cues.append(Cue(start, stop, lines, (first, end), bounds[:-1]))
    return cues


def _display_times(text: _Text, spans, phrase: bool) -> List[Tuple[float, float, float]]:
    """(start, end, wanted duration) of each cue, in seconds, before frame snapping."""
    options, times = text.options, []
    for index, (first, end, _) in enumerate(spans):
        start, spoken = text.starts[first], max(text.ends[first:end])
        following = text.starts[spans[index + 1][0]] if index + 1 < len(spans) else math.inf
        wanted = options.min_duration
        if phrase:
            wanted = max(wanted, text.width(first, end) / options.max_cps)
        stop = max(spoken, start + wanted)
        if options.extend_to_next and following - spoken < PAUSE:
            stop = max(stop, following)
        if phrase:
            stop = min(stop, start + options.max_duration)
        times.append((start, max(start, min(stop, following)), wanted))
    return times


def _to_frame(seconds: float, rate: Fraction) -> int:
    return math.floor(Fraction(seconds) * rate + Fraction(1, 2))  # half up


def _snap(times, options: SubtitleOptions, phrase: bool) -> List[Tuple[float, float, float]]:
    """Times on frame boundaries with at least _FRAME_GAP frames between cues.

    A cue never shrinks below its wanted duration by rounding where there is
    room; where words are denser than a cue and a gap per 3 frames, later cues
    start a frame or two late rather than overlap.
    """
    rate = options.frame_rate
    starts = []
    for start, _, _ in times:
        frame = _to_frame(start, rate)
        starts.append(max(frame, starts[-1] + 1 + _FRAME_GAP) if starts else frame)
    snapped = []
    for index, ((_, stop, wanted), first) in enumerate(zip(times, starts)):
        # Rounding must not take a cue under its wanted duration; the caps
        # below bring back whatever the seconds already had to give up.
        last = max(_to_frame(stop, rate),
                   first + math.ceil(Fraction(wanted) * rate - Fraction(1, 10**6)))
        if phrase:
            last = min(last, first + math.floor(Fraction(options.max_duration) * rate))
        if index + 1 < len(starts):
            last = min(last, starts[index + 1] - _FRAME_GAP)
        last = max(last, first + 1)
        snapped.append((float(first / rate), float(last / rate), wanted))
    return snapped
