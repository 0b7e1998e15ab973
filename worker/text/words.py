"""Words as the contract defines them: whitespace-separated tokens as written,
punctuation kept with its word; in scripts written without spaces (Han, kana,
Thai, Lao, Khmer, Myanmar) each character is a word, a character being a
grapheme (a base character with its combining marks, never split). Also the
inverse (words back into a line) and the script test that decides which text
is written without spaces.

Pure Python (``regex`` for grapheme clusters): the writers, the cue builder,
the aligners and the text front end all import this.
"""
from __future__ import annotations

import itertools
import unicodedata
from typing import List, Sequence

import regex

from worker.text.scripts import is_unspaced, is_unspaced_letter

_GRAPHEME = regex.compile(r"\X")


def is_cjk(char: str) -> bool:
    """True for Han, kana and CJK punctuation (Korean puts spaces between words,
    so Hangul is not among them)."""
    code = ord(char)
    return (0x3000 <= code <= 0x30FF or 0x3400 <= code <= 0x4DBF
            or 0x4E00 <= code <= 0x9FFF or 0xF900 <= code <= 0xFAFF
            or 0xFF00 <= code <= 0xFFEF or 0x20000 <= code <= 0x2FA1F)


def is_cjk_punctuation(char: str) -> bool:
    return is_cjk(char) and unicodedata.category(char)[0] == "P"


def graphemes(text: str) -> List[str]:
    """User-perceived characters: a base character with its combining marks, an
    emoji sequence joined by ZWJ, a flag."""
    return _GRAPHEME.findall(text)


def separator(previous: str, word: str) -> str:
    # Full-width punctuation carries its own space; unspaced scripts take none.
    if (not previous or (is_unspaced(previous[-1]) and is_unspaced(word[0]))
            or is_cjk_punctuation(previous[-1]) or is_cjk_punctuation(word[0])):
        return ""
    return " "


def join_words(words: Sequence[str]) -> str:
    """Words back into a line: spaces between them, none inside unspaced scripts."""
    text = ""
    for word in words:
        text += separator(text, word) + word
    return text


def split_words(text: str) -> List[str]:
    """The words of ``text``: whitespace-separated tokens, punctuation kept with its word.

    Chinese, Japanese, Thai, Lao, Khmer and Myanmar are written without spaces,
    so there every character (grapheme) is a word of its own (the unit WhisperX
    aligns for Han and kana); punctuation stays on the character before it
    (opening brackets and quotes on the one after), and Latin or digit runs
    inside such text stay whole. Full-width closing punctuation ends a word.
    """
    words: List[str] = []
    for token in text.split():
        if token.isascii():  # the common case: nothing to cut
            words.append(token)
            continue
        for part in _after_cjk_punctuation(token):
            if any(map(is_unspaced_letter, part)):
                words.extend(_split_unspaced(part))
            else:
                words.append(part)
    return words


def _after_cjk_punctuation(token: str) -> List[str]:
    """``token`` cut after full-width closing punctuation, which carries its own
    space ("45%，¥45" is two words)."""
    parts, start = [], 0
    for index in range(1, len(token)):
        previous = token[index - 1]
        if (is_cjk_punctuation(previous) and _is_trailing(previous)
                and not _is_trailing(token[index])):
            parts.append(token[start:index])
            start = index
    parts.append(token[start:])
    return parts


def _is_opening(char: str) -> bool:
    return unicodedata.category(char) in ("Ps", "Pi")


def _is_trailing(char: str) -> bool:
    return unicodedata.category(char)[0] == "P" and not _is_opening(char)


def _attaches_back(char: str) -> bool:
    # Closing punctuation, and marks Unicode leaves out of the cluster before
    # them (Myanmar's tall AA is a grapheme of its own), stay with that unit.
    return _is_trailing(char) or unicodedata.category(char)[0] == "M"


def _count_while(text: str, predicate) -> int:
    return next((index for index, char in enumerate(text) if not predicate(char)), len(text))


def _runs(token: str) -> list:
    """Alternating runs of unspaced letters (a list of graphemes) and other text."""
    grouped = itertools.groupby(graphemes(token), lambda g: is_unspaced_letter(g[0]))
    return [(letters, list(group) if letters else "".join(group)) for letters, group in grouped]


def _split_unspaced(token: str) -> List[str]:
    units: List[str] = []
    pending = ""  # opening punctuation waiting for the unit it opens
    for letters, run in _runs(token):
        if letters:
            units.extend(pending + char if n == 0 else char for n, char in enumerate(run))
            pending = ""
            continue
        if units and not pending:
            lead = _count_while(run, _attaches_back)
            units[-1] += run[:lead]
            run = run[lead:]
        elif not units:  # punctuation opening the token waits for its first unit
            lead = _count_while(run, lambda char: unicodedata.category(char)[0] == "P")
            pending += run[:lead]
            run = run[lead:]
        cut = len(run) - _count_while(run[::-1], _is_opening)
        if run[:cut]:
            units.append(pending + run[:cut])
            pending = ""
        pending += run[cut:]
    if pending and units:
        units[-1] += pending
    elif pending:
        units.append(pending)
    return units
