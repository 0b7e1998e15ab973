"""Spanish: every category the normalizer reads."""
from __future__ import annotations

from worker.text.lang.base import ATTACHED, Locale, nouns, units

ES = Locale(
    code="es", full=True, decimal_mark=",", group_mark=".", space_groups=True,
    words={"range": "a", "minus": "menos", "point": "coma", "percent": "por ciento", "and": "y",
           "dot": "punto", "at": "arroba", "slash": "barra", "dash": "guion",
           "underscore": "guion bajo", "colon": "dos puntos", "number": "número",
           "plus": "más", "equals": "igual a", "to": "a", "over": "entre",
           "hash": "almohadilla", "tilde": "virgulilla", "question": "signo de interrogación",
           "oclock": "en punto", "past": "y", "of": "de"},
    currencies=nouns({
        "$": ("dólar", "dólares", False, ("centavo", "centavos")),
        "€": ("euro", "euros", False, ("céntimo", "céntimos")),
        "£": ("libra", "libras", True, ("penique", "peniques")), "¥": ("yen", "yenes"),
        "₹": ("rupia", "rupias", True), "₩": ("won", "wones"),
        "₽": ("rublo", "rublos"), "₿": ("bitcoin", "bitcoins")}),
    units=units({
        "km": ("kilómetro", "kilómetros"), "m": ("metro", "metros"),
        "cm": ("centímetro", "centímetros"), "mm": ("milímetro", "milímetros"),
        "mi": ("milla", "millas", True), "ft": ("pie", "pies"),
        "in": ("pulgada", "pulgadas", True), "kg": ("kilogramo", "kilogramos"),
        "g": ("gramo", "gramos"), "mg": ("miligramo", "miligramos"),
        "lb": ("libra", "libras", True), "oz": ("onza", "onzas", True),
        "t": ("tonelada", "toneladas", True), "l": ("litro", "litros"),
        "ml": ("mililitro", "mililitros"), "h": ("hora", "horas", True),
        "min": ("minuto", "minutos"), "s": ("segundo", "segundos"),
        "ms": ("milisegundo", "milisegundos"),
        "kmh": ("kilómetro por hora", "kilómetros por hora"),
        "kwh": ("kilovatio hora", "kilovatios hora"), "kw": ("kilovatio", "kilovatios"),
        "w": ("vatio", "vatios"), "v": ("voltio", "voltios"), "hz": ("hercio", "hercios"),
        "mhz": ("megahercio", "megahercios"), "ghz": ("gigahercio", "gigahercios"),
        "kb": ("kilobyte", "kilobytes"), "mb": ("megabyte", "megabytes"),
        "gb": ("gigabyte", "gigabytes"), "tb": ("terabyte", "terabytes"),
        "c": ("grado Celsius", "grados Celsius"),
        "f": ("grado Fahrenheit", "grados Fahrenheit"), "deg": ("grado", "grados"),
        "m2": ("metro cuadrado", "metros cuadrados"),
        "km2": ("kilómetro cuadrado", "kilómetros cuadrados")}, ATTACHED),
    abbreviations={
        "Sr.": ("señor", False), "Sra.": ("señora", False), "Srta.": ("señorita", False),
        "Dr.": ("doctor", False), "Dra.": ("doctora", False), "Ud.": ("usted", False),
        "Uds.": ("ustedes", False), "etc.": ("etcétera", True), "núm.": ("número", False),
        "n.º": ("número", False), "Av.": ("avenida", False), "aprox.": ("aproximadamente", False),
        "&": ("y", False), "+": ("más", False), "=": ("igual a", False),
        "@": ("arroba", False)},
    months=("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
            "septiembre", "octubre", "noviembre", "diciembre"),
    magnitudes=("mil", "millón", "millones"),
)
