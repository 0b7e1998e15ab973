"""Pronunciations: whole-word, case-insensitive respellings (``Nguyen`` -> ``Win``).

A key matches a written word by its core, the word without its leading and
trailing punctuation, and the punctuation stays around the respelling
(``Nguyen's,`` is not ``Nguyen``, but ``(Nguyen),`` becomes ``(Win),``). A key
of several words (``New York``, or ``重庆``, two words in Chinese) matches those
words in a row, never across a pause. The request's table is merged over the
voice's. Standard library and ``worker.text.words`` only.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from worker.core.errors import INVALID_INPUT, WorkerError
from worker.text.cleaning import clean_text, has_something_to_say
from worker.text.words import split_words

MAX_ENTRIES = 200
MAX_SIDE_CHARS = 64
_TAG_MARKS = ("[", "<", ">", "]")


@dataclass(frozen=True)
class Respelled:
    """What one written word is read as before normalization; ``spoken_by`` is
    the index of the word whose respelling also says this one (its own index
    when it keeps its own text)."""
    text: str
    spoken_by: int


def split_core(word: str) -> Tuple[str, str, str]:
    """``word`` as (leading punctuation, core, trailing punctuation); a word of
    punctuation only is all core."""
    start = 0
    while start < len(word) and unicodedata.category(word[start])[0] == "P":
        start += 1
    end = len(word)
    while end > start and unicodedata.category(word[end - 1])[0] == "P":
        end -= 1
    if start == end:
        return "", word, ""
    return word[:start], word[start:end], word[end:]


def _key(text: str) -> Tuple[str, ...]:
    return tuple(split_core(word)[1].casefold() for word in split_words(text))


def validate_pronunciations(value, field: str = "pronunciations") -> Dict[str, str]:
    """``value`` checked as a pronunciation table (an object of 1 to 200 entries,
    word -> respelling, each side 1 to 64 characters) and returned with both
    sides cleaned and stripped; ``invalid_input`` naming the entry otherwise."""
    if not isinstance(value, Mapping):
        raise WorkerError(INVALID_INPUT, (
            f"{field} must be an object of word -> respelling, "
            f"not {type(value).__name__}"))
    if not 1 <= len(value) <= MAX_ENTRIES:
        raise WorkerError(INVALID_INPUT, (
            f"{field} has {len(value)} entries; 1 to {MAX_ENTRIES} are accepted"))
    table: Dict[str, str] = {}
    seen: Dict[Tuple[str, ...], str] = {}
    for word, respelling in value.items():
        word = _checked_side(word, field, "word", str(word))
        respelling = _checked_side(respelling, field, "respelling", word)
        if not has_something_to_say(respelling):
            raise WorkerError(INVALID_INPUT, (
                f"{field}[{word!r}] is {respelling!r}, which has no letter or digit; "
                "a respelling says the word another way"))
        key = _key(word)
        if key in seen:
            raise WorkerError(INVALID_INPUT, (
                f"{field} has both {seen[key]!r} and {word!r}, which are the same word "
                "(matching ignores case and surrounding punctuation); keep one"))
        seen[key] = word
        table[word] = respelling
    return table


def _checked_side(text, field: str, side: str, word: str) -> str:
    where = f"{field} {side} {word!r}" if side == "word" else f"{field}[{word!r}]"
    if not isinstance(text, str):
        raise WorkerError(INVALID_INPUT, f"{where} must be a string, not {type(text).__name__}")
    cleaned = clean_text(text).strip()
    if not 1 <= len(cleaned) <= MAX_SIDE_CHARS:
        raise WorkerError(INVALID_INPUT, (
            f"{where} has {len(cleaned)} characters after stripping; "
            f"1 to {MAX_SIDE_CHARS} are accepted"))
    if any(mark in cleaned for mark in _TAG_MARKS):
        raise WorkerError(INVALID_INPUT, (
            f"{where} is {cleaned!r}; brackets and pause tags are not accepted there"))
    return cleaned


def merge_pronunciations(*tables: Optional[Mapping[str, str]]) -> Dict[Tuple[str, ...], str]:
    """The tables merged, later ones winning (pass the voice's, then the
    request's), keyed by the matched words' cores in lower case."""
    merged: Dict[Tuple[str, ...], str] = {}
    for table in tables:
        for word, respelling in (table or {}).items():
            key = _key(word)
            if key and all(key):
                merged[key] = respelling
    return merged


def apply_pronunciations(words: Sequence[str], table: Mapping[Tuple[str, ...], str],
                         pause_after: Iterable[int] = ()) -> List[Respelled]:
    """Each written word as it is to be read: respelled where a key matches it
    (longest key first), else as written. ``pause_after``: indices of words
    followed by a pause, which no key spans."""
    out = [Respelled(word, index) for index, word in enumerate(words)]
    if not table:
        return out
    by_first: Dict[str, List[Tuple[Tuple[str, ...], str]]] = {}
    for key, respelling in sorted(table.items(), key=lambda item: -len(item[0])):
        by_first.setdefault(key[0], []).append((key, respelling))
    cores = [split_core(word)[1].casefold() for word in words]
    stops = set(pause_after)
    index = 0
    while index < len(words):
        match = _match_at(cores, index, by_first.get(cores[index], ()), stops)
        if match is None:
            index += 1
            continue
        key, respelling = match
        out[index:index + len(key)] = _respell(words, index, len(key), respelling)
        index += len(key)
    return out


def _match_at(cores, index, candidates, stops):
    for key, respelling in candidates:
        end = index + len(key)
        if (tuple(cores[index:end]) == key
                and not any(position in stops for position in range(index, end - 1))):
            return key, respelling
    return None


def _respell(words: Sequence[str], index: int, count: int, respelling: str) -> List[Respelled]:
    """The respelling over ``count`` words from ``index``: word for word when it
    has as many words, else all of it on the first, which then says the rest."""
    parts = split_words(respelling)
    if len(parts) == count:
        out = []
        for offset, part in enumerate(parts):
            lead, _, trail = split_core(words[index + offset])
            out.append(Respelled(lead + part + trail, index + offset))
        return out
    lead = split_core(words[index])[0]
    trail = split_core(words[index + count - 1])[2]
    first = Respelled(lead + respelling + trail, index)
    return [first] + [Respelled("", index) for _ in range(count - 1)]
