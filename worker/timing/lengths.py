"""How long a word takes to say, in sound-like units, for any script.

The fallback aligner matches words to stretches of speech by their expected
lengths; only the ratios between words matter (the speaking rate is measured
on the audio). In alphabets a letter is about a sound (vowels a little
longer, a final silent ``e`` none); a Chinese or Japanese character, a Hangul
block and a Brahmic consonant with its vowel sign are syllables of a few
sounds; digits stand for the number words they are read as; every word adds
its onset and release; a word of symbols alone is not spoken.
"""
from __future__ import annotations

import unicodedata

from worker.text.words import is_cjk

CONSONANT = 1.0
VOWEL = 1.1
SYLLABLE = 0.5        # each vowel group: the beat a syllable adds beyond its sounds
CJK_SYLLABLE = 3.0    # a Han or kana character, a Hangul block
AKSHARA = 1.5         # a Brahmic letter or vowel sign (a consonant carries its vowel)
OTHER_LETTER = 1.3    # scripts written without most vowels (Arabic, Hebrew) and the rest
DIGIT = 4.0           # "2024": two thousand twenty four
WORD = 1.2            # every spoken word: its onset and release
_VOWELS = frozenset("aeiouyæøœɑɛɪɔʊəɐαεηιουωаеёиоуыэюяіїєў")
_SILENT_E = {"en": ("e",), "fr": ("e", "es")}


def _alphabetic(char: str) -> bool:
    return char.isalpha() and unicodedata.name(char, "").split(" ")[0] in (
        "LATIN", "GREEK", "CYRILLIC")


def _brahmic(char: str) -> bool:
    code = ord(char)
    return 0x0900 <= code <= 0x0DFF or 0x1000 <= code <= 0x109F


def _letters_length(letters: str, language: str) -> float:
    """A run of alphabetic letters: its sounds and syllables."""
    if not letters:
        return 0.0
    vowels = [unicodedata.normalize("NFD", char)[0] in _VOWELS for char in letters]
    groups = sum(1 for n, vowel in enumerate(vowels) if vowel and (n == 0 or not vowels[n - 1]))
    stem = letters.rstrip("s") if language == "fr" else letters
    if groups > 1 and stem.endswith(_SILENT_E.get(language, ("\0",))) \
            and not stem.endswith("le") and not vowels[len(stem) - 2]:
        groups -= 1
        vowels[len(stem) - 1] = None  # the silent e: no sound at all
    sounds = sum(VOWEL if vowel else CONSONANT for vowel in vowels if vowel is not None)
    return sounds + SYLLABLE * max(groups, 1)


def _char_length(char: str) -> float:
    """A character outside the alphabets."""
    if char.isdigit():
        return DIGIT
    if (is_cjk(char) and char.isalpha()) or 0xAC00 <= ord(char) <= 0xD7A3:
        return CJK_SYLLABLE
    if _brahmic(char):
        # A virama joins two consonants into one syllable: it takes a little back.
        return -0.5 * AKSHARA if "VIRAMA" in unicodedata.name(char, "") else AKSHARA * (
            char.isalpha() or unicodedata.category(char)[0] == "M")
    return OTHER_LETTER if char.isalpha() else 0.0


def spoken_length(word: str, language: str = "") -> float:
    """The expected spoken length of ``word`` in sound units (about 45 ms each
    at a usual rate); 0 for a word of symbols only. ``language`` (ISO 639-1)
    refines the count where known."""
    language = (language or "").split("-")[0].lower()
    total, run = 0.0, ""
    for char in unicodedata.normalize("NFKC", word).casefold():
        if _alphabetic(char):
            run += char
            continue
        total += _letters_length(run, language) + _char_length(char)
        run = ""
    total += _letters_length(run, language)
    return total + WORD if total > 0 else 0.0
