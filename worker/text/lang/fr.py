"""French: every category the normalizer reads."""
from __future__ import annotations

from worker.text.lang.base import ATTACHED, Locale, nouns, units

FR = Locale(
    code="fr", full=True, decimal_mark=",", group_mark=".", space_groups=True,
    words={"range": "à", "minus": "moins", "point": "virgule", "percent": "pour cent", "and": "et",
           "dot": "point", "at": "arobase", "slash": "barre oblique", "dash": "tiret",
           "underscore": "tiret bas", "colon": "deux-points", "number": "numéro",
           "plus": "plus", "equals": "égale", "to": "à", "over": "sur",
           "hash": "dièse", "tilde": "tilde", "question": "point d'interrogation",
           "oclock": "heure", "oclocks": "heures"},
    currencies=nouns({
        "$": ("dollar", "dollars", False, ("cent", "cents")),
        "€": ("euro", "euros", False, ("centime", "centimes")),
        "£": ("livre", "livres", True, ("penny", "pence")), "¥": ("yen", "yens"),
        "₹": ("roupie", "roupies", True), "₩": ("won", "wons"),
        "₽": ("rouble", "roubles"), "₿": ("bitcoin", "bitcoins"),
        "CHF": ("franc", "francs", False, ("centime", "centimes"))}),
    units=units({
        "km": ("kilomètre", "kilomètres"), "m": ("mètre", "mètres"),
        "cm": ("centimètre", "centimètres"), "mm": ("millimètre", "millimètres"),
        "mi": ("mile", "miles"), "ft": ("pied", "pieds"), "in": ("pouce", "pouces"),
        "kg": ("kilogramme", "kilogrammes"), "g": ("gramme", "grammes"),
        "mg": ("milligramme", "milligrammes"), "lb": ("livre", "livres", True),
        "t": ("tonne", "tonnes", True), "l": ("litre", "litres"),
        "ml": ("millilitre", "millilitres"), "h": ("heure", "heures", True),
        "min": ("minute", "minutes", True), "s": ("seconde", "secondes", True),
        "ms": ("milliseconde", "millisecondes", True),
        "kmh": ("kilomètre heure", "kilomètres heure"),
        "kwh": ("kilowattheure", "kilowattheures"), "kw": ("kilowatt", "kilowatts"),
        "w": ("watt", "watts"), "v": ("volt", "volts"), "hz": ("hertz", "hertz"),
        "mhz": ("mégahertz", "mégahertz"), "ghz": ("gigahertz", "gigahertz"),
        "kb": ("kilooctet", "kilooctets"), "mb": ("mégaoctet", "mégaoctets"),
        "gb": ("gigaoctet", "gigaoctets"), "tb": ("téraoctet", "téraoctets"),
        "c": ("degré Celsius", "degrés Celsius"),
        "f": ("degré Fahrenheit", "degrés Fahrenheit"), "deg": ("degré", "degrés"),
        "m2": ("mètre carré", "mètres carrés"),
        "km2": ("kilomètre carré", "kilomètres carrés")}, ATTACHED),
    abbreviations={
        "M.": ("Monsieur", False), "MM.": ("Messieurs", False), "Mme": ("Madame", False),
        "Mmes": ("Mesdames", False), "Mlle": ("Mademoiselle", False),
        "Dr": ("docteur", False), "Dr.": ("docteur", False), "Pr": ("professeur", False),
        "etc.": ("et cetera", True), "env.": ("environ", False), "n°": ("numéro", False),
        "N°": ("numéro", False), "av.": ("avenue", False), "bd": ("boulevard", False),
        "St": ("Saint", False), "Ste": ("Sainte", False), "cf.": ("confer", False),
        "&": ("et", False), "+": ("plus", False), "=": ("égale", False),
        "@": ("arobase", False)},
    months=("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
            "septembre", "octobre", "novembre", "décembre"),
    magnitudes=("mille", "million", "millions", "milliard", "milliards"),
)
