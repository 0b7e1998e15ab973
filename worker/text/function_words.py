"""Words a subtitle line should not end on: articles, prepositions and
conjunctions (and the few abbreviations that always precede a name), per
language.

A line or cue that ends on one of these leaves the reader holding half a
phrase ("... with only three tools: a" / "saw, ..."), so the cue builder
treats a break after them as a last resort. The lists are deliberately
conservative: words that also end phrases as adverbs or verb particles
("up", "out", "off", "over", "like") are left out, since a break after them
is often the natural one.

Standard library only.
"""
from __future__ import annotations

import itertools
import unicodedata
from types import MappingProxyType
from typing import Optional

_ENGLISH = """
    a an the my your our their its
    about across after against among at before between beyond by despite during
    except for from in into near of on onto per than through to toward towards
    under until upon via with within without
    and or but nor yet because although if unless whether while whereas when where
    that which who whose
"""
_GERMAN = """
    der die das den dem des ein eine einen einem einer eines kein keine keinen
    keinem keiner mein meine meinen meinem dein deine sein seine ihr ihre unser unsere
    an am ans auf aus bei beim bis durch für gegen hinter im in ins mit nach neben
    ohne seit über um unter von vom vor während wegen zu zum zur zwischen
    und oder aber denn sondern dass weil wenn ob als obwohl damit sowie
"""
_FRENCH = """
    le la les un une des du au aux ce cet cette ces mon ma mes ton ta tes son sa
    ses notre nos votre vos leurs
    à de dans en sur sous pour par avec sans chez vers entre contre depuis pendant
    avant après selon
    et ou mais donc car ni que si quand comme lorsque puisque
"""
_SPANISH = """
    el la los las un una unos unas lo al del mi mis tu tus su sus nuestro nuestra
    nuestros nuestras
    a ante bajo con contra de desde durante en entre hacia hasta mediante para por
    según sin sobre tras
    y e o u ni pero sino que porque aunque si cuando como mientras
"""
_ITALIAN = """
    il lo la i gli le un uno una del dello della dei degli delle al allo alla ai
    agli alle dal dallo dalla dai dagli dalle nel nello nella nei negli nelle sul
    sullo sulla sui sugli sulle
    di a da in con su per tra fra
    e ed o ma che se perché quando come mentre
"""
_PORTUGUESE = """
    o a os as um uma uns umas do da dos das no na nos nas ao aos à às pelo pela
    pelos pelas num numa
    de em por para com sem sob sobre entre até desde
    e ou mas que se porque quando como enquanto
"""
_DUTCH = """
    de het een
    van in op aan met voor door bij naar uit onder tot om
    en of maar want dat omdat als
"""

FUNCTION_WORDS = MappingProxyType({
    language: frozenset(words.split()) for language, words in (
        ("en", _ENGLISH), ("de", _GERMAN), ("fr", _FRENCH), ("es", _SPANISH),
        ("it", _ITALIAN), ("pt", _PORTUGUESE), ("nl", _DUTCH))
})

# Abbreviations whose period is not a sentence end and which bind to the name after.
_TITLES = frozenset(
    "mr. mrs. ms. dr. prof. st. mt. vs. e.g. i.e. hr. fr. frau herr m. mme. sr. sra.".split())


def primary_language(language: Optional[str]) -> str:
    """``en`` for ``en``, ``en-US``, ``EN_gb``; empty for none."""
    return (language or "").replace("_", "-").split("-")[0].lower()


def _is_opening(char: str) -> bool:
    # Straight quotes and Spanish inverted marks open as often as they close.
    return unicodedata.category(char) in ("Ps", "Pi") or char in "\"'\u00bf\u00a1"


def binds_forward(word: str, language: Optional[str]) -> bool:
    """True when a line ending on ``word`` would cut a phrase in two: a function
    word of ``language``, a title abbreviation, or a lone opening bracket/quote."""
    if word and all(_is_opening(char) for char in word):
        return True
    lowered = word.lower()
    if lowered in _TITLES:
        return True
    core = "".join(itertools.dropwhile(_is_opening, lowered))
    if not core or unicodedata.category(core[-1])[0] == "P":
        return False  # "of," ends on punctuation: the comma is the break
    return core in FUNCTION_WORDS.get(primary_language(language), frozenset())
