"""From the chunks the model spoke back to the words the caller wrote.

The aligners time what was said ("forty-five dollars"); timings and subtitle
files list what was written ("$45"). This builds the chain's WrittenWords
for a text that went through the front end: the map from spoken spans to
written ones, and which stretch of audio (which chunk) holds each written
word, so that a word the aligner could not time is placed inside its own
chunk, never in a pause between chunks.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

from worker.text.chunking import ChunkedText
from worker.text.frontend import PreparedText, written_spans
from worker.timing.backend import WrittenWords


def written_words(prepared: PreparedText, chunked: ChunkedText,
                  times: Sequence[Tuple[float, float]]) -> WrittenWords:
    """``times``: each chunk's (start, end) in seconds of the final audio."""
    units = chunked.units
    groups = _groups(prepared, chunked, times)
    return WrittenWords(tuple(prepared.written),
                        lambda spans: written_spans(prepared, units, spans),
                        tuple(groups))


def words_of_chunks(prepared: PreparedText, chunked: ChunkedText) -> List[List[str]]:
    """The written words each chunk says (a word over several chunks goes with
    the first; a word said by nothing with the word before it)."""
    words: List[List[str]] = [[] for _ in chunked.chunks]
    for word, (first, _) in zip(prepared.words, _owners(prepared, chunked)):
        words[first].append(word.text)
    return words


def _owners(prepared: PreparedText, chunked: ChunkedText) -> List[Tuple[int, int]]:
    """Per written word, the first and last chunk that says it; words said by
    nothing stay with the word before them (or the first chunk)."""
    reach: dict = {}
    for number, chunk in enumerate(chunked.chunks):
        for _, index in chunk.units:
            first, _ = reach.get(index, (number, number))
            reach[index] = (first, number)
    owners, last = [], (0, 0)
    for index, word in enumerate(prepared.words):
        found = reach.get(index) or reach.get(word.spoken_by)
        if found is None:
            found = (last[1], last[1])
        owners.append(found)
        last = found
    return owners


def _groups(prepared: PreparedText, chunked: ChunkedText,
            times: Sequence[Tuple[float, float]]) -> list:
    """(first word, end word, start s, end s) per run of chunks no word straddles."""
    groups: list = []
    for index, (first, last) in enumerate(_owners(prepared, chunked)):
        if groups and first <= groups[-1][3]:
            start_word, _, low_chunk, high_chunk = groups[-1]
            groups[-1] = [start_word, index + 1, low_chunk, max(high_chunk, last)]
        else:
            groups.append([index, index + 1, first, last])
    return [(a, b, times[low][0], times[high][1]) for a, b, low, high in groups]
