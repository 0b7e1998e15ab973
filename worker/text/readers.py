"""Readers for one written token's core (the token without its surrounding
punctuation): currency amounts, percentages, numbers with units, ordinals,
fractions, decades, ranges, web addresses and mixed tokens like ``COVID-19``.

Each reader returns the words to say, or ``None`` when the core is not of its
kind (the normalizer then tries the next). None of them raises.
"""
from __future__ import annotations

import re
from typing import Optional

from worker.text import numbers
from worker.text.lang.base import Locale, Noun
from worker.text.lang.en import EN
from worker.text.numbers import Number

NUMBER = r"[-−+]?\d[\d.,]*"
_MAGNITUDE_SUFFIX = {"k": "thousand", "K": "thousand", "m": "million", "M": "million",
                     "bn": "billion", "B": "billion"}
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"(?:https?://|www\.)\S+|[\w-]+(?:\.[\w-]+)*\.(?:com|org|net|edu|gov|io|co|"
                  r"uk|de|fr|es|ai|app|dev|info|biz|me|tv|us|ca|eu|jp|cn|ru|au|in|nl|it|ch|"
                  r"se|no|ly|gl|to|be|at|pl|br|mx)(?:[/:?#]\S*)?", re.IGNORECASE)
_WEB_SYMBOLS = {".": "dot", "/": "slash", "-": "dash", "_": "underscore", "@": "at",
                ":": "colon", "?": "question", "=": "equals", "&": "and", "#": "hash",
                "~": "tilde", "+": "plus", "%": "percent"}
_MIXED = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+|\S")


def word(locale: Locale, key: str) -> str:
    """A symbol's word in the locale, else in English."""
    return locale.words.get(key) or EN.words.get(key, "")


def parse(text: str, locale: Locale) -> Optional[Number]:
    return numbers.parse_number(text, locale.decimal_mark, locale.group_mark)


def say_number(number: Number, locale: Locale) -> Optional[str]:
    if not locale.full:
        said = numbers.read_plainly(number, locale.code)
        if said:
            return said
    return numbers.read_number(number, locale.code, word(locale, "point"),
                               word(locale, "minus"))


def is_singular(number: Number, locale: Locale) -> bool:
    # French keeps the singular under two ("1,5 kilomètre").
    if locale.code == "fr":
        return abs(number.value) < 2
    return number.is_one


def counted(number: Number, noun: Noun, locale: Locale) -> Optional[str]:
    """"five kilometers", "eine Meile", "una libra"."""
    words = say_number(number, locale)
    if words is None:
        return None
    if not number.fraction:
        words = numbers.agree(words, locale.code, noun.feminine)
    if locale.code in ("fr", "es") and re.search(r"\b(millions?|milliards?|millón|millones)$",
                                                 words):
        return words + after_magnitude(noun, locale)  # "trois millions d'euros"
    name = noun.singular if is_singular(number, locale) else noun.plural
    return words + _noun_joiner(locale) + name


def _noun_joiner(locale: Locale) -> str:
    return "" if locale.code in ("zh", "ja") else " "


def currency(core: str, locale: Locale) -> Optional[str]:
    """``$45``, ``-$5``, ``€1,234.50``, ``45€``, ``$5M``."""
    symbols = "|".join(re.escape(symbol) for symbol in sorted(locale.currencies, key=len,
                                                                reverse=True))
    if not symbols:
        return None
    match = re.fullmatch(rf"([-−]?)({symbols})({NUMBER})(k|K|m|M|bn|B)?", core)
    if match:
        amount = parse(match.group(1) + match.group(3), locale)
        magnitude = match.group(4) and _MAGNITUDE_SUFFIX[match.group(4)]
        if magnitude and locale.code != "en":
            return None
        return amount and amount_words(amount, locale.currencies[match.group(2)], locale,
                                       magnitude)
    match = re.fullmatch(rf"({NUMBER})({symbols})", core)
    if match:
        amount = parse(match.group(1), locale)
        return amount and amount_words(amount, locale.currencies[match.group(2)], locale)
    return None


def amount_words(amount: Number, noun: Noun, locale: Locale,
                 magnitude: Optional[str] = None) -> Optional[str]:
    """An amount of money: "one thousand two hundred thirty-four dollars and fifty
    cents", "deux millions d'euros", "四十五美元"."""
    if magnitude:
        words = say_number(amount, locale)
        return words and words + " " + magnitude + after_magnitude(noun, locale)
    fraction = amount.fraction
    if not noun.minor or not fraction or len(fraction) > 2 or locale.code in ("zh", "ja", "ko"):
        return counted(amount, noun, locale)
    whole = Number(False, amount.integer)
    cents = int(fraction.ljust(2, "0"))
    parts = []
    if int(amount.integer) or not cents:
        parts.append(counted(whole, noun, locale))
    if cents:
        minor = Noun(*noun.minor)
        parts.append(counted(Number(False, str(cents)), minor, locale))
    words = f" {word(locale, 'and')} ".join(part for part in parts if part)
    return f"{word(locale, 'minus')} {words}" if amount.negative else words


def after_magnitude(noun: Noun, locale: Locale) -> str:
    """The currency after "million": " dollars", " d'euros", " de euros"."""
    if locale.code == "fr":
        return (" d'" if noun.plural[0].lower() in "aeiouyé" else " de ") + noun.plural
    return (" de " if locale.code == "es" else " ") + noun.plural


def percent(core: str, locale: Locale) -> Optional[str]:
    match = re.fullmatch(rf"({NUMBER})\s*%", core)
    value = match and parse(match.group(1), locale)
    if not value:
        return None
    words = say_number(value, locale)
    if words is None:
        return None
    if "percent_prefix" in locale.words:
        return locale.words["percent_prefix"] + words
    return words + _noun_joiner(locale) + word(locale, "percent")


def with_unit(core: str, locale: Locale) -> Optional[str]:
    """A number with its unit attached: ``10kg``, ``72°F``, ``1.5h``."""
    symbols = "|".join(re.escape(symbol) for symbol in sorted(locale.units, key=len,
                                                                reverse=True))
    match = symbols and re.fullmatch(rf"({NUMBER})({symbols})", core)
    value = match and parse(match.group(1), locale)
    return value and counted(value, locale.units[match.group(2)], locale)


def ordinal(core: str, locale: Locale) -> Optional[str]:
    """``2nd``, ``21st``; French ``1er``, ``2e``; Spanish ``1º``, ``2ª``, ``3er``."""
    code = locale.code
    if code == "en":
        match = re.fullmatch(r"(\d+)(?:st|nd|rd|th)", core, re.IGNORECASE)
        return match and numbers.ordinal(int(match.group(1)), code)
    if code == "fr":
        match = re.fullmatch(r"(\d+)(er|re|ère|e|ème|eme|ᵉ|ᵉʳ)", core)
        if not match:
            return None
        if int(match.group(1)) == 1:
            return "première" if match.group(2) in ("re", "ère") else "premier"
        return numbers.ordinal(int(match.group(1)), code)
    if code == "es":
        match = re.fullmatch(r"(\d+)\.?(º|°|o|ª|a|er|ra)", core)
        words = match and numbers.ordinal(int(match.group(1)), code)
        if not words:
            return None
        if match.group(2) in ("ª", "a", "ra"):
            return re.sub(r"o\b", "a", words)
        return re.sub(r"(prim|terc)ero\b", r"\1er", words) if match.group(2) == "er" else words
    return None


def fraction(core: str, locale: Locale) -> Optional[str]:
    """``3/4`` "three quarters"; ``24/7`` and ``50/50`` "twenty-four seven"."""
    match = re.fullmatch(r"(\d{1,3})/(\d{1,3})", core)
    if not match:
        return None
    top, bottom = int(match.group(1)), int(match.group(2))
    first, second = numbers.cardinal(top, locale.code), numbers.cardinal(bottom, locale.code)
    if first is None or second is None:
        return None
    if not 0 < top < bottom <= 16:
        return f"{first} {second}"
    if locale.code != "en":
        return f"{first} {word(locale, 'over')} {second}"
    names = {2: ("half", "halves"), 4: ("quarter", "quarters")}
    singular, plural = names.get(bottom) or (numbers.ordinal(bottom, "en"),
                                             numbers.ordinal(bottom, "en") + "s")
    return f"{first} {singular if top == 1 else plural}"


def decade(core: str, locale: Locale) -> Optional[str]:
    """English ``1990s`` "nineteen nineties", ``80s`` "eighties"."""
    match = locale.code == "en" and re.fullmatch(r"(\d{2}|\d{4})s", core)
    if not match:
        return None
    value = int(match.group(1))
    words = numbers.year(value, "en") if value >= 100 else numbers.cardinal(value, "en")
    if not words:
        return None
    return words[:-1] + "ies" if words.endswith("y") else words + "s"


def digit_groups(core: str, locale: Locale) -> Optional[str]:
    """``555-1234``, ``+1-555-123-4567``: phone-like groups, read digit by digit."""
    match = re.fullmatch(r"\+?\d+(?:[-.]\d+)+", core)
    groups = re.findall(r"\d+", core)
    if not match or not (len(groups) >= 3 or core.startswith("+")
                         or (len(groups[0]) == 3 and len(groups[-1]) == 4)):
        return None
    read = [numbers.digit_words(group, locale.code) for group in groups]
    return None if None in read else (" ".join(read) if "+" not in core
                                      else word(locale, "plus") + " " + " ".join(read))


def number_range(core: str, locale: Locale) -> Optional[str]:
    """``10-20`` "ten to twenty", ``1990–1995`` as years; ``3:2`` "three to two"."""
    match = re.fullmatch(r"(\d+)([-–:])(\d+)", core)
    if not match:
        return None
    first, mark, second = match.groups()
    years = mark != ":" and all(len(part) == 4 and 1000 <= int(part) <= 2099
                                for part in (first, second))
    read = (numbers.year if years else numbers.cardinal)
    a, b = read(int(first), locale.code), read(int(second), locale.code)
    if a is None or b is None:
        return None
    return f"{a} {word(locale, 'to' if mark == ':' else 'range')} {b}"


def web_address(core: str, locale: Locale) -> Optional[str]:
    """A URL or e-mail address: "example dot com slash pricing"."""
    if not (_EMAIL.fullmatch(core) or _URL.fullmatch(core)):
        return None
    address = re.sub(r"^https?://", "", core, flags=re.IGNORECASE).rstrip("/")
    parts = []
    for piece in re.findall(r"[^\W_]+|[\W_]", address):
        if piece.lower() == "www":
            parts.append("w w w")
        elif piece in _WEB_SYMBOLS:
            parts.append(word(locale, _WEB_SYMBOLS[piece]))
        elif piece.isdigit():
            parts.append(numbers.read_integer(piece, locale.code) or piece)
        elif piece.isalnum():
            parts.append(mixed(piece, locale) or piece)
    return " ".join(part for part in parts if part) or None


def mixed(core: str, locale: Locale) -> Optional[str]:
    """Letters and digits together: ``COVID-19``, ``MP3``, ``B2B``, ``AT&T``, ``C++``."""
    if not re.search(r"\d|&|\+", core):
        return None
    parts = []
    for piece in _MIXED.findall(core):
        if piece[0].isdigit():
            value = parse(piece, locale)
            said = value and say_number(value, locale)
            parts.append(said or " ".join(
                filter(None, (numbers.read_integer(run, locale.code)
                              for run in re.findall(r"\d+", piece)))))
        elif piece.isalpha():
            parts.append(piece)
        elif piece in ("'", "’") and parts:
            parts[-1] += piece
        elif piece in "&+%":
            parts.append(word(locale, {"&": "and", "+": "plus", "%": "percent"}[piece]))
        elif piece in locale.currencies:
            parts.append(locale.currencies[piece].plural)
    joined = " ".join(part for part in parts if part)
    return re.sub(r"(['’]) ", r"\1", joined) or None
