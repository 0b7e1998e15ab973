"""Which writing system a character belongs to, by Unicode block.

Two questions depend on it: whether a script is written without spaces (there
each character is a word) and which language a text is most likely in.
Standard library only; the word splitter and everything above it use this.
"""
from __future__ import annotations

import bisect
import unicodedata

# (first, last, script), sorted by first code point; ranges do not overlap.
_RANGES = (
    (0x0370, 0x03FF, "greek"),
    (0x0400, 0x052F, "cyrillic"),
    (0x0590, 0x05FF, "hebrew"),
    (0x0600, 0x06FF, "arabic"),
    (0x0750, 0x077F, "arabic"),
    (0x08A0, 0x08FF, "arabic"),
    (0x0900, 0x097F, "devanagari"),
    (0x0E00, 0x0E7F, "thai"),
    (0x0E80, 0x0EFF, "lao"),
    (0x1000, 0x109F, "myanmar"),
    (0x1100, 0x11FF, "hangul"),
    (0x1780, 0x17FF, "khmer"),
    (0x19E0, 0x19FF, "khmer"),
    (0x1C80, 0x1C8F, "cyrillic"),
    (0x1F00, 0x1FFF, "greek"),
    (0x2DE0, 0x2DFF, "cyrillic"),
    (0x2E80, 0x2FDF, "han"),
    (0x3005, 0x3007, "han"),
    (0x3021, 0x3029, "han"),
    (0x3038, 0x303B, "han"),
    (0x3040, 0x30FF, "kana"),
    (0x3130, 0x318F, "hangul"),
    (0x31F0, 0x31FF, "kana"),
    (0x3400, 0x4DBF, "han"),
    (0x4E00, 0x9FFF, "han"),
    (0xA640, 0xA69F, "cyrillic"),
    (0xA8E0, 0xA8FF, "devanagari"),
    (0xA960, 0xA97F, "hangul"),
    (0xA9E0, 0xA9FF, "myanmar"),
    (0xAA60, 0xAA7F, "myanmar"),
    (0xAC00, 0xD7FF, "hangul"),
    (0xF900, 0xFAFF, "han"),
    (0xFB1D, 0xFB4F, "hebrew"),
    (0xFB50, 0xFDFF, "arabic"),
    (0xFE70, 0xFEFF, "arabic"),
    (0xFF66, 0xFF9F, "kana"),
    (0xFFA0, 0xFFDC, "hangul"),
    (0x1B000, 0x1B16F, "kana"),
    (0x20000, 0x2FA1F, "han"),
    (0x30000, 0x3134F, "han"),
)
_STARTS = [first for first, _, _ in _RANGES]

# Scripts whose words are not separated by spaces: there each character
# (grapheme) is a word. Korean separates words with spaces, so Hangul is not here.
_UNSPACED = frozenset({"han", "kana", "thai", "lao", "khmer", "myanmar"})


def script_of(char: str) -> str:
    """The script of one character: ``han``, ``kana``, ``hangul``, ``thai``, ``lao``,
    ``khmer``, ``myanmar``, ``cyrillic``, ``arabic``, ``hebrew``, ``greek``,
    ``devanagari``, else ``latin`` (Latin and everything not listed)."""
    code = ord(char)
    index = bisect.bisect_right(_STARTS, code) - 1
    if index >= 0:
        first, last, script = _RANGES[index]
        if first <= code <= last:
            return script
    return "latin"


def is_letter(char: str) -> bool:
    return unicodedata.category(char)[0] == "L"


def is_unspaced_letter(char: str) -> bool:
    """A letter of a script written without spaces (Han, kana, Thai, Lao, Khmer,
    Myanmar), including full-width forms, which count as CJK text."""
    code = ord(char)
    if code < 0x0E00 or not is_letter(char):  # below Thai every script is spaced
        return False
    return script_of(char) in _UNSPACED or 0xFF00 <= code <= 0xFFEF


def is_unspaced(char: str) -> bool:
    """Any character of a script written without spaces (letters, marks, digits,
    punctuation of those blocks), and CJK punctuation."""
    code = ord(char)
    return (script_of(char) in _UNSPACED or 0x3000 <= code <= 0x303F
            or 0xFF00 <= code <= 0xFFEF)
