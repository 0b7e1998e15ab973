"""Numbers as words in a language: cardinals, ordinals, years, decimals, digit
strings, through ``num2words`` for every language it knows (and a reader of
its own for Chinese, which ``num2words`` 0.5.14 lacks).

Nothing here raises on a number: one too long for words (over 21 digits, a
pasted 5,000-digit string) is read digit by digit, and a language nobody can
read numbers in gives ``None`` so the caller leaves the text as written.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Optional

from num2words import CONVERTER_CLASSES, num2words

log = logging.getLogger(__name__)

MAX_WORD_DIGITS = 21  # up to the sextillions; longer numbers are read digit by digit

_ZH_DIGITS = "零一二三四五六七八九"
_ZH_BIG = ("", "万", "亿", "兆")
_UNSPACED_NUMBERS = ("zh", "ja")  # languages whose number words take no spaces


@dataclass(frozen=True)
class Number:
    """A parsed number: sign, integer digits, fraction digits (``None``: none)."""
    negative: bool
    integer: str
    fraction: Optional[str] = None

    @property
    def value(self) -> float:
        text = self.integer + ("." + self.fraction if self.fraction else "")
        return -float(text) if self.negative else float(text)

    @property
    def is_one(self) -> bool:
        return not self.fraction and self.integer.lstrip("0") == "1"


def num2words_code(language: str) -> Optional[str]:
    """The ``num2words`` code for an ISO code (``pt-br`` -> ``pt_BR``), or ``None``."""
    parts = re.split(r"[-_]", language)
    base = parts[0].lower()
    if len(parts) > 1 and f"{base}_{parts[1].upper()}" in CONVERTER_CLASSES:
        return f"{base}_{parts[1].upper()}"
    return base if base in CONVERTER_CLASSES else None


def can_read(language: str) -> bool:
    return language.split("-")[0].split("_")[0].lower() == "zh" or bool(num2words_code(language))


def _n2w(value, language: str, **options) -> Optional[str]:
    code = num2words_code(language)
    if code is None:
        return None
    try:
        text = num2words(value, lang=code, **options)
    except Exception:  # num2words raises many types on edge values; read digits instead
        log.debug("num2words failed for %r in %s", value, code, exc_info=True)
        return None
    return _tidy(text, code)


def _tidy(text: str, code: str) -> str:
    text = text.replace(",", " ")
    if code.startswith("en"):
        text = text.replace(" and ", " ")  # "one hundred twenty", as US narrators say
    if code.startswith("es"):
        text = re.sub(r"\bveintiuno (mil|millones)\b", r"veintiún \1", text)
        text = re.sub(r"\buno (mil|millones)\b", r"un \1", text)
    return " ".join(text.split())


def _base(language: str) -> str:
    return language.split("-")[0].split("_")[0].lower()


def joiner(language: str) -> str:
    """What separates number words: nothing in Chinese and Japanese."""
    return "" if _base(language) in _UNSPACED_NUMBERS else " "


def digit_words(digits: str, language: str) -> Optional[str]:
    """``digits`` read one by one ("zero zero seven")."""
    words = [cardinal(int(digit), language) for digit in digits]
    if any(word is None for word in words):
        return None
    if _base(language) == "zh":
        return "".join(words)
    return joiner(language).join(words)


def cardinal(value: int, language: str) -> Optional[str]:
    """``value`` in words; ``None`` where the language has no number reader."""
    if _base(language) == "zh":
        return _zh_cardinal(value)
    return _n2w(value, language)


def read_integer(digits: str, language: str) -> Optional[str]:
    """A digit string as a number: in words when it is a plain number of at most
    21 digits, else (leading zeros, very long) digit by digit."""
    if len(digits) > MAX_WORD_DIGITS or (len(digits) > 1 and digits.startswith("0")):
        return digit_words(digits, language)
    return cardinal(int(digits), language) or digit_words(digits, language)


def read_number(number: Number, language: str, point: str, minus: str) -> Optional[str]:
    """A parsed number in words: "minus three point one four"."""
    words = read_integer(number.integer, language)
    if words is None:
        return None
    if number.fraction:
        fraction = digit_words(number.fraction, language)
        if fraction is None:
            return None
        words = joiner(language).join([words, point, fraction])
    if number.negative:
        words = joiner(language).join([minus, words])
    return words


def read_plainly(number: Number, language: str) -> Optional[str]:
    """A parsed number in ``num2words``' own words for decimals and signs (for the
    languages the normalizer has no point or minus word of its own)."""
    digits = len(number.integer) + len(number.fraction or "")
    if len(number.integer) > MAX_WORD_DIGITS or (number.fraction and digits > 15):
        return None
    text = ("-" if number.negative else "") + number.integer
    if number.fraction:  # a float, as num2words' converters expect (some drop a Decimal's fraction)
        return _n2w(float(text + "." + number.fraction), language)
    return _n2w(int(text), language)


def ordinal(value: int, language: str) -> Optional[str]:
    if _base(language) == "zh":
        words = _zh_cardinal(value)
        return "第" + words if words else None
    if len(str(value)) > MAX_WORD_DIGITS:
        return None
    return _n2w(value, language, to="ordinal")


def year(value: int, language: str) -> Optional[str]:
    """A year as it is said: "nineteen ninety-nine", "neunzehnhundertneunundneunzig";
    Chinese, Japanese and Korean read years digit by digit or as cardinals."""
    base = _base(language)
    if base == "zh":
        return digit_words(str(value), language)
    if base in ("ja", "ko"):
        return cardinal(value, language)  # num2words' Japanese year is an era name
    return _n2w(value, language, to="year") or cardinal(value, language)


def _zh_group(group: int) -> str:
    out, zero = "", False
    for size, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        digit = group // size % 10
        if digit == 0:
            zero = bool(out)
            continue
        if zero:
            out, zero = out + "零", False
        out += _ZH_DIGITS[digit] + unit
    return out


def _zh_cardinal(value: int) -> Optional[str]:
    if value < 0:
        inner = _zh_cardinal(-value)
        return "负" + inner if inner else None
    if value == 0:
        return "零"
    groups = []
    while value:
        groups.append(value % 10000)
        value //= 10000
    if len(groups) > len(_ZH_BIG):
        return None
    out, gap = "", False
    for index in reversed(range(len(groups))):
        group = groups[index]
        if group == 0:
            gap = bool(out)
            continue
        if out and (gap or group < 1000):
            out += "零"
        out, gap = out + _zh_group(group) + _ZH_BIG[index], False
    return out[1:] if out.startswith("一十") else out


def agree(words: str, language: str, feminine: bool) -> str:
    """Number words before a noun of that gender: "eins" -> "ein"/"eine",
    "vingt et un" -> "vingt et une", "veintiuno" -> "veintiún"/"veintiuna"."""
    base = _base(language)
    if base == "de" and words.endswith("eins"):
        return words[:-4] + ("eine" if feminine else "ein")
    if base == "fr" and feminine and re.search(r"(^|[ -])un$", words):
        return words + "e"
    if base == "es":
        if words.endswith("uno"):
            if feminine:
                return words[:-1] + "a"
            return words[:-3] + ("ún" if words.endswith("veintiuno") else "un")
        if feminine:
            return re.sub(r"ientos\b", "ientas", words)
    return words


def feminine(words: str, language: str) -> str:
    return agree(words, language, True)


def parse_number(text: str, decimal_mark: str = ".", group_mark: str = ",") -> Optional[Number]:
    """``text`` as a number written with the locale's marks (``1,234.50``; in
    German ``1.234,50``), else with the other convention, else ``None``.
    A leading ``-``, ``−`` or ``+`` is the sign."""
    negative = text[:1] in ("-", "\u2212")
    if text[:1] in ("-", "\u2212", "+"):
        text = text[1:]
    for group, decimal in ((group_mark, decimal_mark), (decimal_mark, group_mark)):
        match = re.fullmatch(rf"(\d{{1,3}}(?:{re.escape(group)}\d{{3}})+|\d+)"
                             rf"(?:{re.escape(decimal)}(\d+))?", text)
        if match:
            integer = match.group(1).replace(group, "")
            return Number(negative, _ascii_digits(integer),
                          _ascii_digits(match.group(2)) if match.group(2) else None)
    return None


def _ascii_digits(digits: str) -> str:
    # Full-width, Arabic-Indic or Thai digits read like ASCII ones.
    return "".join(str(int(digit)) for digit in digits)
