"""The job's language: the request's, else the voice's, else detected by script.

Detection counts, per script, how much of the text it writes: a word for
scripts that put spaces between words, a character for those that do not
(one Han character is about one word). So a Chinese sentence with an English
brand name in it stays Chinese. Standard library only.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Optional

from worker.text.scripts import is_letter, is_unspaced_letter, script_of

_LANGUAGE_OF_SCRIPT = {
    "han": "zh", "hangul": "ko", "thai": "th", "lao": "lo", "khmer": "km",
    "myanmar": "my", "cyrillic": "ru", "arabic": "ar", "hebrew": "he",
    "greek": "el", "devanagari": "hi", "latin": "en",
}
DEFAULT_LANGUAGE = "en"


@dataclass(frozen=True)
class Language:
    code: str    # ISO 639-1, lower case, as given (``pt-br`` keeps its region)
    source: str  # ``request`` | ``voice`` | ``detected``


def _script_key(char: str) -> Optional[str]:
    if not is_letter(char):
        return None
    script = script_of(char)
    # Han and kana write one language together: Japanese when any kana is there.
    return "cjk" if script in ("han", "kana") else script


def script_counts(text: str) -> dict:
    """How much of ``text`` each script writes (characters for unspaced
    scripts, words for the others); ``kana`` counts kana characters apart."""
    counts: dict = {}
    for key, group in itertools.groupby(text, _script_key):
        if key is None:
            continue
        run = list(group)
        unspaced = is_unspaced_letter(run[0])
        counts[key] = counts.get(key, 0) + (len(run) if unspaced else 1)
        if key == "cjk":
            counts["kana"] = counts.get("kana", 0) + sum(
                1 for char in run if script_of(char) == "kana")
    return counts


def detect_language(text: str) -> str:
    """``ja`` (kana), ``zh`` (Han without kana), ``ko``, ``th``, ``ru``, ``ar``,
    ``he``, ``el``, ``hi``, ... by the script that writes most of ``text``;
    Latin, and text without letters, is ``en``. A tie goes to the non-Latin script."""
    counts = script_counts(text)
    kana = counts.pop("kana", 0)
    if not counts:
        return DEFAULT_LANGUAGE
    best = max(counts, key=lambda key: (counts[key], key != "latin"))
    if best == "cjk":
        return "ja" if kana else "zh"
    return _LANGUAGE_OF_SCRIPT.get(best, DEFAULT_LANGUAGE)


def resolve_language(text: str, requested: Optional[str] = None,
                     voice: Optional[str] = None) -> Language:
    """The request's language, else the voice's, else the one detected in ``text``."""
    if requested:
        return Language(requested.strip().lower(), "request")
    if voice:
        return Language(voice.strip().lower(), "voice")
    return Language(detect_language(text), "detected")
