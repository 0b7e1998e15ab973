"""Times of day and calendar dates as a narrator says them, per language.

``10:30`` is "ten thirty", "zehn Uhr dreißig", "dix heures trente", "diez y
treinta", "十点三十分"; ``3/4/2025`` (English: month first) is "March fourth,
twenty twenty-five". A value that is no real time or date gives ``None``, and
the caller reads the digits as plain numbers instead.
"""
from __future__ import annotations

import datetime
import re
from typing import Optional

from worker.text import numbers
from worker.text.lang.base import Locale
from worker.text.lang.cjk import KO_HOURS

TIME = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([ap]\.?m\.?)?", re.IGNORECASE)
FRENCH_TIME = re.compile(r"(\d{1,2})h(\d{2})?", re.IGNORECASE)
AM_PM = re.compile(r"([ap])\.?m\.?", re.IGNORECASE)
ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
NUMERIC_DATE = re.compile(r"(\d{1,2})([/.-])(\d{1,2})\2(\d{4}|\d{2})")


def read_time(hour: int, minute: int, second: Optional[int], am_pm: Optional[str],
              locale: Locale) -> Optional[str]:
    """A time of day in words; ``am_pm`` is ``a`` or ``p`` (English only)."""
    limit = 12 if am_pm else 24
    if not (0 <= hour <= limit and 0 <= minute <= 59 and (second or 0) <= 59):
        return None
    reader = _TIME_READERS.get(locale.code)
    if reader is None:
        return None
    words = reader(hour, minute, am_pm, locale)
    if words and second:
        words = _with_seconds(words, second, locale)
    return words


def _n(value: int, locale: Locale) -> str:
    return numbers.cardinal(value, locale.code) or str(value)


def _with_seconds(words: str, second: int, locale: Locale) -> str:
    seconds = numbers.cardinal(second, locale.code)
    name = {"en": ("second", "seconds"), "de": ("Sekunde", "Sekunden"),
            "fr": ("seconde", "secondes"), "es": ("segundo", "segundos")}.get(locale.code)
    if name:
        return f"{words} {locale.words['and']} {seconds} {name[second != 1]}"
    return words + numbers.joiner(locale.code) + seconds + locale.words.get("second", "")


def _english_time(hour: int, minute: int, am_pm: Optional[str], locale: Locale) -> str:
    if am_pm:
        suffix = " a m" if am_pm.lower() == "a" else " p m"
        return _n(hour or 12, locale) + _english_minutes(minute, "") + suffix
    if hour == 0 and minute == 0:
        return "midnight"
    if minute == 0:
        return _n(hour, locale) + (" o'clock" if hour <= 12 else " hundred")
    if hour == 0:
        return "twelve" + _english_minutes(minute, "") + " a m"
    return _n(hour, locale) + _english_minutes(minute, "")


def _english_minutes(minute: int, on_the_hour: str) -> str:
    if minute == 0:
        return on_the_hour
    if minute < 10:
        return " oh " + numbers.cardinal(minute, "en")
    return " " + numbers.cardinal(minute, "en")


def _german_time(hour: int, minute: int, am_pm, locale: Locale) -> str:
    hours = "ein" if hour == 1 else _n(hour, locale)
    return f"{hours} Uhr" + (f" {_n(minute, locale)}" if minute else "")


def _french_time(hour: int, minute: int, am_pm, locale: Locale) -> str:
    hours = numbers.feminine(_n(hour, locale), "fr")
    name = "heure" if hour <= 1 else "heures"
    return f"{hours} {name}" + (f" {_n(minute, locale)}" if minute else "")


def _spanish_time(hour: int, minute: int, am_pm, locale: Locale) -> str:
    hours = numbers.feminine(_n(hour, locale), "es")
    return hours + (f" y {_n(minute, locale)}" if minute else " en punto")


def _cjk_time(hour: int, minute: int, am_pm, locale: Locale) -> str:
    join = numbers.joiner(locale.code)
    if locale.code == "ko":
        hours = (KO_HOURS[hour] if hour < len(KO_HOURS) else _n(hour, locale)) + " 시"
    else:
        hours = _n(hour, locale) + locale.words["hour"]
    if not minute:
        return hours
    return hours + join + _n(minute, locale) + (" " if locale.code == "ko" else "") \
        + locale.words["minute"]


_TIME_READERS = {"en": _english_time, "de": _german_time, "fr": _french_time,
                 "es": _spanish_time, "zh": _cjk_time, "ja": _cjk_time, "ko": _cjk_time}


def read_date(year: int, month: int, day: int, locale: Locale) -> Optional[str]:
    """A calendar date in words, or ``None`` when it is not a real date or the
    language has no month names here (Chinese, Japanese and Korean keep theirs)."""
    try:
        datetime.date(year, month, day)
    except ValueError:
        return None
    code = locale.code
    if code in ("zh", "ja", "ko"):
        join = numbers.joiner(code)
        space = " " if code == "ko" else ""
        marks = ("년", "월", "일") if code == "ko" else ("年", "月", "日")
        parts = [numbers.year(year, code), _n(month, locale), _n(day, locale)]
        return join.join(part + space + mark for part, mark in zip(parts, marks))
    if not locale.months:
        return None
    month_name, year_words = locale.months[month - 1], numbers.year(year, code)
    if code == "en":
        return f"{month_name} {numbers.ordinal(day, code)}, {year_words}"
    if code == "de":
        return f"{numbers.ordinal(day, code)}r {month_name} {year_words}"
    if code == "fr":
        first = "premier" if day == 1 else _n(day, locale)
        return f"{first} {month_name} {year_words}"
    first = "primero" if day == 1 else _n(day, locale)
    return f"{first} de {month_name} de {year_words}"


def date_parts(core: str, locale: Locale) -> Optional[tuple]:
    """(year, month, day) of an ISO date or a numeric date in the locale's order."""
    match = ISO_DATE.fullmatch(core)
    if match:
        return int(match.group(1)), int(match.group(2)), int(match.group(3))
    match = NUMERIC_DATE.fullmatch(core)
    if not match:
        return None
    first, second, year = int(match.group(1)), int(match.group(3)), match.group(4)
    year_value = int(year) + (2000 if len(year) == 2 else 0)
    if locale.date_order == "mdy":
        return year_value, first, second
    return year_value, second, first
