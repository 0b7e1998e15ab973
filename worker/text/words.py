"""Words as the contract defines them: whitespace-separated tokens as written,
punctuation kept with its word; in scripts written without spaces each
character is a word. Also the inverse (words back into a line) and the
script test that decides which text is written without spaces.

Standard library only: the writers, the cue builder and the aligners all
import this.
"""
from __future__ import annotations

import itertools
import unicodedata
from typing import List, Sequence


def is_cjk(char: str) -> bool:
    """True for Han, kana and CJK punctuation: the scripts written without spaces
    (Korean puts spaces between words, so Hangul is not among them)."""
    code = ord(char)
    return (0x3000 <= code <= 0x30FF or 0x3400 <= code <= 0x4DBF
            or 0x4E00 <= code <= 0x9FFF or 0xF900 <= code <= 0xFAFF
            or 0xFF00 <= code <= 0xFFEF or 0x20000 <= code <= 0x2FA1F)


def is_cjk_punctuation(char: str) -> bool:
    return is_cjk(char) and unicodedata.category(char)[0] == "P"


def separator(previous: str, word: str) -> str:
    # Full-width punctuation carries its own space; CJK characters take none.
    if (not previous or (is_cjk(previous[-1]) and is_cjk(word[0]))
            or is_cjk_punctuation(previous[-1]) or is_cjk_punctuation(word[0])):
        return ""
    return " "


def join_words(words: Sequence[str]) -> str:
    """Words back into a line: spaces between them, none between CJK characters."""
    text = ""
    for word in words:
        text += separator(text, word) + word
    return text


def _is_cjk_letter(char: str) -> bool:
    return is_cjk(char) and unicodedata.category(char)[0] == "L"


def detect_language(text: str) -> str:
    """``zh`` when Han or kana characters are at least as many as the other
    words (each such character is about a word), else ``en``."""
    cjk = sum(1 for char in text if _is_cjk_letter(char))
    others = sum(1 for token in text.split() for run in _latin_runs(token))
    return "zh" if cjk and cjk >= others else "en"


def _latin_runs(token: str) -> list:
    return [run for is_cjk_run, run in _runs(token) if not is_cjk_run
            and any(char.isalnum() for char in run)]


def _runs(token: str) -> list:
    return [(key, "".join(group)) for key, group in itertools.groupby(token, _is_cjk_letter)]


def split_words(text: str) -> List[str]:
    """The words of ``text``: whitespace-separated tokens, punctuation kept with its word.

    Chinese and Japanese are written without spaces, so there every Han or
    kana character is a word of its own (the unit WhisperX aligns for them);
    punctuation stays on the character before it (opening brackets and quotes
    on the one after), and Latin or digit runs inside such text stay whole.
    """
    words: List[str] = []
    for token in text.split():
        words.extend(_split_cjk(token) if any(map(_is_cjk_letter, token)) else [token])
    return words


def _is_opening(char: str) -> bool:
    return unicodedata.category(char) in ("Ps", "Pi")


def _is_trailing(char: str) -> bool:
    return unicodedata.category(char)[0] == "P" and not _is_opening(char)


def _count_while(text: str, predicate) -> int:
    return next((index for index, char in enumerate(text) if not predicate(char)), len(text))


def _split_cjk(token: str) -> List[str]:
    units: List[str] = []
    pending = ""  # opening punctuation waiting for the unit it opens
    for letters, run in _runs(token):
        if letters:
            units.extend(pending + char if n == 0 else char for n, char in enumerate(run))
            pending = ""
            continue
        if units and not pending:
            lead = _count_while(run, _is_trailing)
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
