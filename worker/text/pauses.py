"""Pause tags: ``[pause:1.5s]``, ``[pause:300ms]`` and SSML ``<break time="750ms"/>``
or ``<break strength="medium"/>``, anywhere in the text.

A tag is cut out of the text and becomes silence of exactly its length; it
also separates words (``a[pause:1s]b`` is two words). Anything that starts
like a tag (the word ``pause`` after ``[``, ``break`` after ``<`` or ``</``)
but does not parse, or asks for a length outside 0.05 to 10 s, is
``invalid_input`` naming the tag.
Standard library only.
"""
from __future__ import annotations

import re
from typing import List, Union

from worker.core.errors import INVALID_INPUT, WorkerError

MIN_PAUSE_S = 0.05
MAX_PAUSE_S = 10.0
STRENGTHS = {"x-weak": 0.1, "weak": 0.25, "medium": 0.5, "strong": 0.75, "x-strong": 1.2}

_TAG_START = re.compile(r"\[\s*pause\b|<\s*/?\s*break\b", re.IGNORECASE)
_DURATION = r"(\d+(?:\.\d*)?|\.\d+)\s*(ms|s)"
_PAUSE = re.compile(r"\[\s*pause\s*:\s*" + _DURATION + r"\s*\]", re.IGNORECASE)
_ATTRIBUTE = r"\s+[a-z-]+\s*=\s*(?:\"[^\"<>]*\"|'[^'<>]*')"
_BREAK = re.compile(r"<\s*break((?:" + _ATTRIBUTE + r")*)\s*/?\s*>(?:\s*<\s*/\s*break\s*>)?",
                    re.IGNORECASE)
_ATTRIBUTES = re.compile(r"([a-z-]+)\s*=\s*(?:\"([^\"<>]*)\"|'([^'<>]*)')", re.IGNORECASE)
_TIME = re.compile(r"\s*" + _DURATION + r"\s*", re.IGNORECASE)

ACCEPTED = ('[pause:1.5s], [pause:300ms], <break time="750ms"/> or '
            '<break strength="x-weak|weak|medium|strong|x-strong"/>')

# The text between tags, and each tag's length in seconds, in order.
Piece = Union[str, float]


def has_tags(text: str) -> bool:
    """Whether ``text`` holds anything that reads as a pause tag."""
    return _TAG_START.search(text) is not None


def split_pauses(text: str, allowed: bool = True, field: str = "text") -> List[Piece]:
    """``text`` cut at its pause tags: strings (text between tags, possibly empty)
    and floats (seconds of silence), in order, starting and ending with a string.

    ``allowed=False`` (the ``align`` action) makes any tag ``invalid_input``.
    """
    pieces: List[Piece] = []
    position = 0
    for start in _TAG_START.finditer(text):
        if start.start() < position:
            continue  # inside a tag already read, e.g. ``<break/></break>``
        tag, seconds = _read_tag(text, start.start(), field)
        if not allowed:
            raise WorkerError(INVALID_INPUT, (
                f"{field} has the pause tag {tag!r}, but pause tags are not accepted "
                "here (align times the audio as it is); remove it"))
        pieces.extend([text[position:start.start()], seconds])
        position = start.start() + len(tag)
    pieces.append(text[position:])
    return pieces


def _read_tag(text: str, start: int, field: str) -> tuple:
    for pattern, reader in ((_PAUSE, _pause_seconds), (_BREAK, _break_seconds)):
        match = pattern.match(text, start)
        if match:
            tag = match.group(0)
            seconds = reader(match, tag, field)
            if not MIN_PAUSE_S <= seconds <= MAX_PAUSE_S:
                raise WorkerError(INVALID_INPUT, (
                    f"{field} has the pause tag {tag!r} of {seconds:g} s; a pause is "
                    f"{MIN_PAUSE_S:g} to {MAX_PAUSE_S:g} s"))
            return tag, seconds
    raise _malformed(_snippet(text, start), field)


def _malformed(tag: str, field: str, why: str = "") -> WorkerError:
    reason = f" ({why})" if why else ""
    return WorkerError(INVALID_INPUT, (
        f"{field} has a malformed pause tag {tag!r}{reason}; accepted: {ACCEPTED}, "
        f"each {MIN_PAUSE_S:g} to {MAX_PAUSE_S:g} s"))


def _snippet(text: str, start: int) -> str:
    """The would-be tag: up to its closing bracket, at most 40 characters."""
    end = min(len(text), start + 40)
    for index in range(start + 1, end):
        if text[index] in "]>":
            return text[start:index + 1]
        if text[index] in "[<":
            return text[start:index]
    return text[start:end]


def _seconds(number: str, unit: str) -> float:
    value = float(number)
    return value / 1000.0 if unit.lower() == "ms" else value


def _pause_seconds(match: re.Match, tag: str, field: str) -> float:
    return _seconds(match.group(1), match.group(2))


def _break_seconds(match: re.Match, tag: str, field: str) -> float:
    attributes = {}
    for name, double, single in _ATTRIBUTES.findall(match.group(1)):
        name = name.lower()
        if name in attributes:
            raise _malformed(tag, field, f"{name} given twice")
        attributes[name] = double or single
    unknown = sorted(set(attributes) - {"time", "strength"})
    if unknown:
        raise _malformed(tag, field, f"unknown attribute {unknown[0]!r}")
    if "time" in attributes:  # SSML: time wins over strength
        time = _TIME.fullmatch(attributes["time"])
        if not time:
            raise _malformed(tag, field, f"time {attributes['time']!r} is not like 750ms or 2s")
        return _seconds(time.group(1), time.group(2))
    strength = attributes.get("strength", "medium").strip().lower()
    if strength not in STRENGTHS:
        raise _malformed(tag, field, f"strength {strength!r} is not one of "
                         + ", ".join(STRENGTHS))
    return STRENGTHS[strength]
