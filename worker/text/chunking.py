"""Cutting prepared text into chunks the model can take, by a budget in UTF-8
bytes (the caller derives it from the reference: transcript bytes per second
times the seconds left under ``MAX_CHUNK_SECONDS``, times speed).

A pause is always a cut. Between pauses the text is cut the way f5-tts's
``chunk_text`` cuts it: after sentence and clause punctuation (``.!?;:,`` before
a space, CJK ``。！？；：，`` and ``、``), filling each chunk greedily, so
ordinary punctuated text chunks as it did before. A clause over the budget,
which ``chunk_text`` would pass on whole, is cut at word boundaries (each CJK
or Thai character is a word) into near-equal parts, and a word over the
budget between graphemes. No chunk exceeds the budget unless a single
grapheme does.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import List, Tuple

from worker.text.frontend import PreparedText, Unit, join_spoken, spoken_separator
from worker.text.words import graphemes

_CLAUSE_END = re.compile(r"(?:[;:,.!?…]|[；：，。！？、])[\"'”’»)\]」』）】》]*$")
_CJK_CLAUSE_END = re.compile(r"[；：，。！？、][\"'”’»)\]」』）】》]*$")


@dataclass(frozen=True)
class Chunk:
    text: str                 # the model text: split_words(text) == the units' spoken words
    units: Tuple[Unit, ...]   # (spoken word, written word index), in order
    pause_after: float        # seconds of silence after this chunk


@dataclass(frozen=True)
class ChunkedText:
    lead_pause: float         # seconds of silence before the first chunk
    chunks: Tuple[Chunk, ...]

    @property
    def units(self) -> List[Unit]:
        return [unit for chunk in self.chunks for unit in chunk.units]


@dataclass(frozen=True)
class _Item:
    spoken: str
    index: int
    spaced: bool  # whitespace before it in the written text


def budget_bytes(ref_text: str, ref_seconds: float, max_chunk_seconds: float,
                 speed: float = 1.0) -> int:
    """The byte budget of a chunk: the reference's transcript bytes per second
    times the seconds a chunk may add to the reference, times speed (at least 1)."""
    per_second = len(ref_text.encode("utf-8")) / max(ref_seconds, 0.1)
    return max(1, int(per_second * (max_chunk_seconds - ref_seconds) * speed))


def chunk_text(prepared: PreparedText, max_bytes: int) -> ChunkedText:
    """``prepared`` in chunks of at most ``max_bytes`` UTF-8 bytes of model text."""
    budget = max(1, int(max_bytes))
    lead, after = prepared.pauses_between()
    items = [_Item(spoken, index, spaced) for (spoken, index), spaced
             in zip(prepared.units, prepared.unit_spacing())]
    chunks: List[Chunk] = []
    start = 0
    for end, seconds in enumerate(after):
        if seconds or end == len(items) - 1:
            segment = _Segment([part for item in items[start:end + 1]
                                for part in _split_word(item, budget)])
            ranges = segment.fill(budget)
            chunks += [segment.chunk(first, last, 0.0) for first, last in ranges[:-1]]
            chunks.append(segment.chunk(*ranges[-1], seconds))
            start = end + 1
    return ChunkedText(lead, tuple(chunks))


class _Segment:
    """The items between two pauses, with the byte size of any run of them at
    hand: sizes of the words and of the separators the model text puts
    between them (a space, or none inside unspaced scripts)."""

    def __init__(self, items: List[_Item]):
        self.items = items
        gaps = [0] + [1 if item.spaced or spoken_separator(before.spoken, item.spoken) else 0
                      for before, item in zip(items, items[1:])]
        self.gaps = gaps
        self.word_sum = [0]
        self.gap_sum = [0]
        for item, gap in zip(items, gaps):
            self.word_sum.append(self.word_sum[-1] + len(item.spoken.encode("utf-8")))
            self.gap_sum.append(self.gap_sum[-1] + gap)

    def size(self, start: int, end: int) -> int:
        """Bytes of the model text of items ``start`` to ``end`` (exclusive)."""
        if end <= start:
            return 0
        return (self.word_sum[end] - self.word_sum[start]
                + self.gap_sum[end] - self.gap_sum[start + 1])

    def chunk(self, start: int, end: int, pause: float) -> Chunk:
        run = self.items[start:end]
        text = join_spoken([item.spoken for item in run], [item.spaced for item in run])
        return Chunk(text, tuple((item.spoken, item.index) for item in run), pause)

    def clauses(self) -> List[Tuple[int, int]]:
        """Cut after clause punctuation, as ``chunk_text`` cuts (ASCII marks only
        before a space)."""
        cuts = [0]
        for position, item in enumerate(self.items[:-1]):
            spaced = self.gaps[position + 1] == 1
            if _CJK_CLAUSE_END.search(item.spoken) or (spaced and _CLAUSE_END.search(item.spoken)):
                cuts.append(position + 1)
        cuts.append(len(self.items))
        return list(zip(cuts, cuts[1:]))

    def fill(self, budget: int) -> List[Tuple[int, int]]:
        """Clauses into chunks greedily; a clause over the budget in parts."""
        ranges: List[Tuple[int, int]] = []
        current = None
        for start, end in self.clauses():
            if current is not None and self.size(current, end) <= budget:
                continue
            if current is not None:
                ranges.append((current, start))
            parts = ([(start, end)] if self.size(start, end) <= budget
                     else self.split(start, end, budget))
            ranges += parts[:-1]
            current = parts[-1][0]
        ranges.append((current, len(self.items)))
        return ranges

    def split(self, start: int, end: int, budget: int) -> List[Tuple[int, int]]:
        """A clause over the budget cut at word boundaries into parts of about
        equal size (a tiny last chunk would be read too slowly)."""
        parts: List[Tuple[int, int]] = []
        while start < end:
            remaining = self.size(start, end)
            if remaining <= budget:
                parts.append((start, end))
                break
            target = remaining / math.ceil(remaining / budget)
            cut = start + 1
            while cut < end:
                longer = self.size(start, cut + 1)
                if longer > budget or abs(longer - target) > abs(self.size(start, cut) - target):
                    break
                cut += 1
            parts.append((start, cut))
            start = cut
        return parts


def _split_word(item: _Item, budget: int) -> List[_Item]:
    """One spoken word over the budget, cut between graphemes into about equal
    pieces within the budget."""
    size = len(item.spoken.encode("utf-8"))
    if size <= budget:
        return [item]
    share = min(budget, math.ceil(size / math.ceil(size / budget)))
    pieces: List[str] = []
    for cluster in graphemes(item.spoken):
        if pieces and len((pieces[-1] + cluster).encode("utf-8")) <= share:
            pieces[-1] += cluster
        else:
            pieces.append(cluster)
    return [_Item(text, item.index, item.spaced and n == 0) for n, text in enumerate(pieces)]
