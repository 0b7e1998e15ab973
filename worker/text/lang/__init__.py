"""Locales for the normalizer, by language code."""
from __future__ import annotations

import dataclasses
from typing import Optional

from worker.text import numbers
from worker.text.lang.base import Locale
from worker.text.lang.cjk import JA, KO, ZH
from worker.text.lang.de import DE
from worker.text.lang.en import EN
from worker.text.lang.es import ES
from worker.text.lang.fr import FR

_FULL = {locale.code: locale for locale in (EN, DE, FR, ES, ZH, JA, KO)}
# English outside North America writes dates day first.
_DAY_FIRST_ENGLISH = frozenset({"gb", "au", "nz", "ie", "in", "za"})


def locale_for(language: str) -> Optional[Locale]:
    """The locale of an ISO code (``en``, ``en-GB``, ``pt_BR``): a full one, one
    for plain numbers where only ``num2words`` knows the language, else ``None``."""
    parts = language.replace("_", "-").lower().split("-")
    base = parts[0]
    locale = _FULL.get(base)
    if locale is not None:
        if base == "en" and len(parts) > 1 and parts[1] in _DAY_FIRST_ENGLISH:
            return dataclasses.replace(locale, date_order="dmy")
        return locale
    if numbers.can_read(language):
        return Locale(code=language, full=False, decimal_mark=",", group_mark=".")
    return None
