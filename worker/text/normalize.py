"""Normalization: numbers, ordinals, years, decimals, negatives, percentages,
currency amounts, times, dates, units, abbreviations and web addresses become
words in the job's language.

It works on tokens (whitespace-separated words) with their neighbours in
view, because some readings need them: ``5 km`` (the unit's number), ``10:30
am``, ``1 000 000`` in French (one number over three tokens), ``St. Louis``
against ``Main St.``. A reading that takes several tokens puts all its words
on the first and marks the others as said by it. English, German, French and
Spanish are read in every category, Chinese, Japanese and Korean in most,
every other language ``num2words`` knows in plain numbers; anything else is
left as written, with a note saying so.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from worker.text import datetimes, numbers, readers
from worker.text.lang import locale_for
from worker.text.lang.base import Locale, Noun

_LEAD = set("\"'“”‘’«»([{¿¡<„‚「『（【《〈—–")
_TRAIL = set(".,;:!?…\"'“”‘’«»)]}>」』）】》〉。，！？；：、—–")
_PLAIN = re.compile(r"[-−+]?\d[\d.,]*")
_YEAR_WORDS = ("年",)


@dataclass(frozen=True)
class Normalized:
    """Per token: what is said for it, and the index of the token whose reading
    says it (its own index, or the first token of a reading over several)."""
    spoken: Tuple[str, ...]
    said_by: Tuple[int, ...]
    notes: Tuple[str, ...] = ()


def edges(token: str) -> Tuple[str, str, str]:
    """(leading punctuation, core, trailing punctuation) of a token; a sign or
    a dash before a digit stays in the core ("-3")."""
    start, end = 0, len(token)
    while start < end and token[start] in _LEAD:
        start += 1
    while end > start and token[end - 1] in _TRAIL:
        end -= 1
    return token[:start], token[start:end], token[end:]


def support_note(language: str) -> Optional[str]:
    """Why normalization reads less than everything in ``language``, if it does."""
    locale = locale_for(language)
    if locale is None:
        return (f"normalization does not know language {language!r}: numbers, symbols "
                "and abbreviations are left as written")
    if not locale.full:
        return (f"normalization reads only plain numbers in language {language!r}; "
                "currency, dates, times, units and abbreviations are left as written")
    return None


def normalize_tokens(tokens: Sequence[str], language: str) -> Normalized:
    """Each token's spoken form in ``language`` (see the module docstring)."""
    note = support_note(language)
    locale = locale_for(language)
    if locale is None:
        return Normalized(tuple(tokens), tuple(range(len(tokens))), (note,))
    reader = _Reader(list(tokens), locale)
    spoken: List[str] = list(tokens)
    said_by = list(range(len(tokens)))
    index = 0
    while index < len(tokens):
        words, used = reader.read(index)
        spoken[index] = words
        for other in range(index + 1, index + used):
            spoken[other], said_by[other] = "", index
        index += used
    return Normalized(tuple(spoken), tuple(said_by), (note,) if note else ())


class _Reader:
    """Reads token ``i`` of a text in one locale, looking at its neighbours."""

    def __init__(self, tokens: List[str], locale: Locale):
        self.tokens = tokens
        self.locale = locale
        self.cores = [edges(token)[1] for token in tokens]
        self.magnitudes = {word.lower().rstrip(".") for word in locale.magnitudes}
        self.months = {month.lower() for month in locale.months}

    def core(self, index: int) -> str:
        return self.cores[index] if 0 <= index < len(self.cores) else ""

    def read(self, index: int) -> Tuple[str, int]:
        if self.locale.full:
            for rule in (self._space_groups, self._number_then_currency,
                         self._amount_magnitude, self._time_am_pm):
                found = rule(index)
                if found:
                    return found
        return self.word(index, self.tokens[index]), 1

    def word(self, index: int, token: str) -> str:
        lead, core, trail = edges(token)
        if not core:
            return token
        said, trail = self._core(index, core, trail)
        return token if said is None else lead + said + trail

    def _core(self, index: int, core: str, trail: str) -> Tuple[Optional[str], str]:
        if not self.locale.full:
            return self._plain(index, core), trail
        expanded = self._abbreviation(index, core, trail)
        if expanded:
            return expanded
        if not any(char.isdigit() for char in core):
            said = self._symbol_word(index, core) or readers.web_address(core, self.locale)
            if not said and re.search(r"[^\W\d_]", core):
                said = readers.mixed(core, self.locale)  # "AT&T", "C++"
            return said, trail
        return self._with_digits(index, core, trail)

    def _with_digits(self, index: int, core: str, trail: str) -> Tuple[Optional[str], str]:
        locale = self.locale
        if self.locale.code == "de" and trail.startswith(".") and self._month(index + 1):
            said = self._german_date_ordinal(index, core)
            if said:
                return said, trail[1:]
        for reader in (readers.web_address, readers.currency, readers.percent, self._time,
                       self._date, readers.ordinal, readers.decade, readers.with_unit):
            said = reader(core, locale)
            if said:
                return said, trail
        said = self._hash_number(core) or self._plain(index, core)
        if said:
            return said, trail
        for reader in (readers.fraction, readers.digit_groups, readers.number_range,
                       readers.mixed):
            said = reader(core, locale)
            if said:
                return said, trail
        return None, trail

    # -- readings over several tokens -------------------------------------------------

    def _space_groups(self, index: int) -> Optional[Tuple[str, int]]:
        """French, German, Spanish "1 000 000": digit groups split by spaces."""
        if not self.locale.space_groups or not re.fullmatch(r"[-−]?\d{1,3}", self.core(index)):
            return None
        end = index + 1
        while (end < len(self.tokens) and re.match(r"\d{3}(?!\d)", self.tokens[end])
               and edges(self.tokens[end - 1])[2] == ""):
            end += 1
        if end == index + 1 or not re.fullmatch(r"\d{3}([.,]\d+)?", self.core(end - 1)):
            return None
        joined = self.tokens[index] + "".join(self.tokens[index + 1:end])
        noun = self.locale.currencies.get(self.core(end))
        lead, core, trail = edges(joined)
        amount = noun and not trail and readers.parse(core, self.locale)
        if amount and not edges(self.tokens[end])[0]:  # "3 000 €"
            said = readers.amount_words(amount, noun, self.locale)
            if said:
                return lead + said + edges(self.tokens[end])[2], end - index + 1
        return self.word(end - 1, joined), end - index

    def _number_then_currency(self, index: int) -> Optional[Tuple[str, int]]:
        """"45 €", "1,50 $": the amount and its currency sign as two tokens."""
        noun = self.locale.currencies.get(self.core(index + 1))
        lead, core, trail = edges(self.tokens[index])
        amount = noun and not trail and _PLAIN.fullmatch(core) and readers.parse(core, self.locale)
        if not amount or edges(self.tokens[index + 1])[0]:
            return None
        said = readers.amount_words(amount, noun, self.locale)
        return (lead + said + edges(self.tokens[index + 1])[2], 2) if said else None

    def _amount_magnitude(self, index: int) -> Optional[Tuple[str, int]]:
        """"$2.5 million" -> "two point five million dollars"."""
        magnitude = self.core(index + 1)
        if not self._is_magnitude(index + 1):
            return None
        lead, core, trail = edges(self.tokens[index])
        match = not trail and re.fullmatch(rf"({'|'.join(map(re.escape, self.locale.currencies))})"
                                           rf"({readers.NUMBER})", core)
        amount = match and readers.parse(match.group(2), self.locale)
        if not amount:
            return None
        noun = self.locale.currencies[match.group(1)]
        spoken_magnitude = self.locale.abbreviations.get(magnitude + ".", (magnitude,))[0]
        said = readers.amount_words(amount, noun, self.locale, spoken_magnitude)
        return (lead + said + edges(self.tokens[index + 1])[2], 2) if said else None

    def _time_am_pm(self, index: int) -> Optional[Tuple[str, int]]:
        """English "10:30 am", "10 p.m."; German "10:30 Uhr" ("zehn Uhr dreißig")."""
        following = self.core(index + 1)
        english = self.locale.code == "en" and datetimes.AM_PM.fullmatch(following)
        german = self.locale.code == "de" and following == "Uhr"
        lead, core, trail = edges(self.tokens[index])
        match = (english or german) and not trail and re.fullmatch(
            r"(\d{1,2})(?::(\d{2}))?" if english else r"(\d{1,2})[:.](\d{2})", core)
        if not match:
            return None
        said = datetimes.read_time(int(match.group(1)), int(match.group(2) or 0), None,
                                   following[0] if english else None, self.locale)
        return (lead + said + edges(self.tokens[index + 1])[2], 2) if said else None

    # -- readings of one token in its context ----------------------------------------

    def _abbreviation(self, index: int, core: str, trail: str) -> Optional[Tuple[str, str]]:
        dotted = trail.startswith(".")
        if self.locale.code == "en" and dotted:
            contextual = self._english_contextual(index, core)
            if contextual:
                return contextual[0], trail[1:] if contextual[1] else trail
        table = self.locale.abbreviations
        forms = ((core + ".", trail[1:]), (core, trail)) if dotted else ((core, trail),)
        for written, rest in forms:
            # A key in lower case matches in any case ("ETC."); others only as written.
            found = table.get(written) or table.get(written.lower())
            if found:
                spoken, keeps_period = found
                if keeps_period and written.endswith("."):
                    rest = "." + rest
                return spoken, rest
        return None

    def _english_contextual(self, index: int, core: str) -> Optional[Tuple[str, bool]]:
        """(reading, whether the period goes) for "Dr.", "St." and "No."."""
        following = self.core(index + 1)
        capital_after = following[:1].isupper()
        capital_before = self.core(index - 1)[:1].isupper()
        if core == "Dr":
            if not capital_after and capital_before:
                return "Drive", False
            return "Doctor", True
        if core == "St":
            return ("Saint", True) if capital_after else ("Street", False)
        if core in ("No", "no") and following[:1].isdigit():
            return "number", True
        return None

    def _symbol_word(self, index: int, core: str) -> Optional[str]:
        """"%", "€", "km" or "°C" standing after a number."""
        previous = self._number_before(index)
        if previous is None:
            return None
        if core == "%":
            return readers.word(self.locale, "percent")
        noun = self.locale.currencies.get(core) or self.locale.units.get(core)
        if not noun or noun.attached:
            return None
        if self._is_magnitude(index - 1) and core in self.locale.currencies:
            return readers.after_magnitude(noun, self.locale).strip()  # "millions d'euros"
        return noun.singular if readers.is_singular(previous, self.locale) else noun.plural

    def _is_magnitude(self, index: int) -> bool:
        return self.core(index).lower().rstrip(".") in self.magnitudes

    def _number_before(self, index: int):
        if self._is_magnitude(index - 1):
            return readers.parse("2", self.locale)
        core = self.core(index - 1)
        return readers.parse(core, self.locale) if _PLAIN.fullmatch(core) else None

    def _noun_after(self, index: int) -> Optional[Noun]:
        core = self.core(index + 1)
        noun = self.locale.units.get(core) or self.locale.currencies.get(core)
        return noun if noun and not noun.attached else None

    def _month(self, index: int) -> bool:
        return self.core(index).lower() in self.months

    def _plain(self, index: int, core: str) -> Optional[str]:
        """A plain number: a year where it looks like one, else a cardinal."""
        if not _PLAIN.fullmatch(core):
            return None
        value = readers.parse(core, self.locale)
        if value is None:
            return None
        code = self.locale.code
        if self._is_year(index, core, value):
            return numbers.year(int(value.integer), code)
        if code == "en" and self._month(index - 1) and not value.fraction \
                and 1 <= int(value.integer) <= 31:
            return numbers.ordinal(int(value.integer), code)
        said = readers.say_number(value, self.locale)
        noun = self._noun_after(index)
        if said and noun and not value.fraction:
            said = numbers.agree(said, code, noun.feminine)
        return said

    def _is_year(self, index: int, core: str, value) -> bool:
        if not self.locale.full or value.fraction or value.negative or not core.isdigit():
            return False
        if not (len(core) == 4 and 1000 <= int(core) <= 2099):
            return False
        following = self.core(index + 1)
        if self.locale.code in ("zh", "ja", "ko"):
            return following.startswith(_YEAR_WORDS)
        return self._noun_after(index) is None

    def _hash_number(self, core: str) -> Optional[str]:
        match = re.fullmatch(r"#(\d+)", core)
        said = match and numbers.read_integer(match.group(1), self.locale.code)
        return said and f"{readers.word(self.locale, 'number')} {said}"

    def _time(self, core: str, locale: Locale) -> Optional[str]:
        match = datetimes.TIME.fullmatch(core)
        if match:
            hour, minute, second, am_pm = match.groups()
            return datetimes.read_time(int(hour), int(minute), second and int(second),
                                       am_pm and am_pm[0], locale)
        match = re.fullmatch(r"(\d{1,2})\s*([ap])\.?m\.?", core, re.IGNORECASE)
        if match and locale.code == "en":
            return datetimes.read_time(int(match.group(1)), 0, None, match.group(2), locale)
        match = locale.code == "fr" and datetimes.FRENCH_TIME.fullmatch(core)
        if match:
            return datetimes.read_time(int(match.group(1)), int(match.group(2) or 0), None,
                                       None, locale)
        return None

    def _date(self, core: str, locale: Locale) -> Optional[str]:
        parts = datetimes.date_parts(core, locale)
        return parts and datetimes.read_date(*parts, locale)

    def _german_date_ordinal(self, index: int, core: str) -> Optional[str]:
        """German "3. Oktober": "dritter Oktober", after "am" "dritten"."""
        if not core.isdigit() or not 1 <= int(core) <= 31:
            return None
        said = numbers.ordinal(int(core), "de")
        dative = self.core(index - 1).lower() in ("am", "vom", "zum", "im", "beim", "dem")
        return said and said + ("n" if dative else "r")
