"""Cleaning what the caller wrote: control characters out, whitespace to spaces,
and the test that a text has something to say.

Standard library only.
"""
from __future__ import annotations

import unicodedata

from worker.core.errors import INVALID_INPUT, WorkerError

# Control (Cc), format (Cf), surrogate (Cs), private-use (Co) and unassigned (Cn).
_DROPPED = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
# Zero-width (non-)joiners are format characters, but they hold emoji sequences
# and Indic or Persian spellings together: dropping them would change the
# written words the caller sees in their timings.
_KEPT = frozenset({"\u200c", "\u200d"})


def clean_text(text: str) -> str:
    """``text`` in NFC with every whitespace character a plain space and control,
    format, private-use and unassigned characters removed."""
    kept = []
    for char in unicodedata.normalize("NFC", text):
        if char.isspace():
            kept.append(" ")
        elif char in _KEPT or unicodedata.category(char) not in _DROPPED:
            kept.append(char)
    return "".join(kept)


def has_something_to_say(text: str) -> bool:
    """True when ``text`` holds a letter or a digit (by Unicode category)."""
    return any(unicodedata.category(char)[0] in "LN" for char in text)


def require_something_to_say(text: str, field: str = "text") -> None:
    if not has_something_to_say(text):
        raise WorkerError(INVALID_INPUT, (
            f"{field} has nothing to say: it holds no letter or digit once pause tags "
            "and control characters are removed (only punctuation, symbols, emoji or "
            "whitespace); send at least one word"))
