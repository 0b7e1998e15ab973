"""The shape of a locale: what the normalizer needs to know about a language
(its number marks, the words for symbols, currencies, units, abbreviations
and months), and the unit symbols every locale names in its own words.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Dict, Mapping, Optional, Tuple


@dataclass(frozen=True)
class Noun:
    """A currency or unit name: singular, plural, grammatical gender (``f``
    makes "une heure", "eine Meile", "una libra"), and for currencies the name
    of a hundredth. ``attached``: only read right after digits ("5in", never
    "5 in", which is English)."""
    singular: str
    plural: str
    feminine: bool = False
    minor: Optional[Tuple[str, str]] = None
    attached: bool = False


@dataclass(frozen=True)
class Locale:
    code: str
    full: bool                   # every category, or plain numbers only
    decimal_mark: str = "."
    group_mark: str = ","
    space_groups: bool = False   # "1 000 000" is one number
    date_order: str = "dmy"
    words: Mapping[str, str] = field(default_factory=dict)
    currencies: Mapping[str, Noun] = field(default_factory=dict)
    units: Mapping[str, Noun] = field(default_factory=dict)
    # written form -> (spoken, whether the final period stays as punctuation)
    abbreviations: Mapping[str, Tuple[str, bool]] = field(default_factory=dict)
    months: Tuple[str, ...] = ()
    magnitudes: Tuple[str, ...] = ()  # "million", which go before the currency name

    def __post_init__(self):
        # Locales are shared constants: their tables are made read-only.
        for name in ("words", "currencies", "units", "abbreviations"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))


def nouns(table: Dict[str, tuple]) -> Dict[str, Noun]:
    return {symbol: Noun(*spec) for symbol, spec in table.items()}


def units(names: Dict[str, tuple], attached: Tuple[str, ...] = ()) -> Dict[str, Noun]:
    """Unit symbols -> nouns; ``names`` maps a name key to (singular, plural[, f])."""
    table = {}
    for symbols, key in UNIT_SYMBOLS:
        spec = names.get(key)
        if spec is None:
            continue
        for symbol in symbols.split():
            table[symbol] = Noun(spec[0], spec[1], len(spec) > 2 and spec[2],
                                 attached=symbol in attached)
    return table


UNIT_SYMBOLS = (
    ("km", "km"), ("m", "m"), ("cm", "cm"), ("mm", "mm"), ("mi", "mi"), ("ft", "ft"),
    ("in", "in"), ("yd", "yd"), ("kg", "kg"), ("g", "g"), ("mg", "mg"), ("lb lbs", "lb"),
    ("oz", "oz"), ("t", "t"), ("l L", "l"), ("ml mL", "ml"), ("h hr hrs", "h"),
    ("min mins", "min"), ("s sec secs", "s"), ("ms", "ms"), ("km/h kph", "kmh"),
    ("mph", "mph"), ("m/s", "mps"), ("kWh", "kwh"), ("kW", "kw"), ("W", "w"),
    ("MW", "mw"), ("V", "v"), ("mAh", "mah"), ("Hz", "hz"), ("kHz", "khz"),
    ("MHz", "mhz"), ("GHz", "ghz"), ("KB kB", "kb"), ("MB", "mb"), ("GB", "gb"),
    ("TB", "tb"), ("°C ℃", "c"), ("°F ℉", "f"), ("°", "deg"), ("m²", "m2"),
    ("km²", "km2"),
)
# Symbols that are also words ("in", "s"), read only right after digits.
ATTACHED = ("in", "t", "l", "L", "h", "s", "W", "V")

