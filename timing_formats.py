"""Word timings written as SRT, WebVTT, CSV, JSON or ASS (karaoke).

Standard library only: this module imports no torch, numpy or model code, so
the handler and the tests can use it without loading any engine.

One timestamp formatter serves every format; what differs between formats
(decimal separator, hour digits, fractional digits) is data in ``_CLOCKS``.
Times are rounded half up on their decimal value (0.9995 s is 1.000 s, not
0.999 s as binary float rounding would give), and the carry goes into the
seconds, minutes and hours instead of producing ``00:00:00,1000``.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Callable, Dict, Sequence, Tuple

from worker.core.timings import WordTiming, scaled
from worker.text.words import join_words, separator

FORMATS = ("srt", "vtt", "csv", "json", "ass")
CUE_MODES = ("word", "phrase")

# Readable phrase cues: a line short enough for a TV-safe area, on screen
# long enough to read, and never spanning a long silence.
MAX_CUE_CHARS = 42
MAX_CUE_SECONDS = 5.0
MAX_CUE_GAP = 1.5
SENTENCE_ENDS = (".", "!", "?", "\u2026", "\u3002", "\uff01", "\uff1f")
_CLOSING = "\"')]}\u201d\u2019\u300d\u300f\uff09"


def format_seconds(seconds: float, places: int = 3) -> str:
    """Plain decimal seconds for CSV: ``1.000``, never scientific notation."""
    return f"{scaled(seconds, places).scaleb(-places):f}"


@dataclass(frozen=True)
class _Clock:
    separator: str     # between seconds and the fraction
    hour_digits: int   # minimum width; more hours simply take more digits
    places: int        # fractional digits: 3 = milliseconds, 2 = centiseconds


_CLOCKS = {
    "srt": _Clock(",", 2, 3),
    "vtt": _Clock(".", 2, 3),
    "ass": _Clock(".", 1, 2),
}


def format_timestamp(seconds: float, fmt: str) -> str:
    """``seconds`` as a timestamp of subtitle format ``fmt`` (srt, vtt, ass)."""
    clock = _CLOCKS[fmt]
    scale = 10 ** clock.places
    units = int(scaled(seconds, clock.places))
    hours, units = divmod(units, 3600 * scale)
    minutes, units = divmod(units, 60 * scale)
    whole, fraction = divmod(units, scale)
    return (f"{hours:0{clock.hour_digits}d}:{minutes:02d}:{whole:02d}"
            f"{clock.separator}{fraction:0{clock.places}d}")


@dataclass(frozen=True)
class Cue:
    words: Tuple[WordTiming, ...]

    @property
    def start(self) -> float:
        return self.words[0].start_time

    @property
    def end(self) -> float:
        return max(word.end_time for word in self.words)

    @property
    def text(self) -> str:
        return join_words([word.word for word in self.words])


def _ends_sentence(word: str) -> bool:
    return word.rstrip(_CLOSING).endswith(SENTENCE_ENDS)


def _fits(cue: list, word: WordTiming) -> bool:
    text = join_words([w.word for w in cue] + [word.word])
    gap = word.start_time - max(w.end_time for w in cue)
    return (len(text) <= MAX_CUE_CHARS and gap <= MAX_CUE_GAP
            and word.end_time - cue[0].start_time <= MAX_CUE_SECONDS)


def group_cues(words: Sequence[WordTiming], mode: str = "word") -> list:
    """Cues of one word each (``word``) or readable lines (``phrase``)."""
    if mode == "word":
        return [Cue((word,)) for word in words]
    cues, current = [], []
    for word in words:
        if current and not _fits(current, word):
            cues.append(Cue(tuple(current)))
            current = []
        current.append(word)
        if _ends_sentence(word.word):
            cues.append(Cue(tuple(current)))
            current = []
    if current:
        cues.append(Cue(tuple(current)))
    return cues


def _srt(cues: Sequence[Cue], meta: dict) -> str:
    blocks = [f"{n}\n{format_timestamp(c.start, 'srt')} --> {format_timestamp(c.end, 'srt')}\n"
              f"{c.text}\n" for n, c in enumerate(cues, start=1)]
    return "\n".join(blocks)


def _vtt_escape(text: str) -> str:
    # WebVTT cue text is markup: a bare & or < would start an entity or tag.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _vtt(cues: Sequence[Cue], meta: dict) -> str:
    blocks = [f"{format_timestamp(c.start, 'vtt')} --> {format_timestamp(c.end, 'vtt')}\n"
              f"{_vtt_escape(c.text)}\n" for c in cues]
    return "\n".join(["WEBVTT\n"] + blocks)


_ASS_HEADER = """[Script Info]
; word timings from the F5-TTS worker
ScriptType: v4.00+
PlayResX: 384
PlayResY: 288
WrapStyle: 0
ScaledBorderAndShadow: yes

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding
Style: Default,Arial,20,&H00FFFFFF,&H000000FF,&H00000000,&H80000000,0,0,0,0,100,100,0,0,1,2,1,2,10,10,10,1

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
"""


def _ass_escape(word: str) -> str:
    # ASS has no escape for override braces, and a backslash starts \N, \h...;
    # swap them for look-alikes so a word can never turn into a tag.
    return word.replace("\\", "\uff3c").replace("{", "(").replace("}", ")")


def _karaoke(cue: Cue) -> str:
    """``{\\kN}`` per word, N in centiseconds, counted on the rounded clock so
    the durations add up to the cue exactly; silences get an empty syllable."""
    position, parts, previous = int(scaled(cue.start, 2)), [], ""
    for word in cue.words:
        start, end = int(scaled(word.start_time, 2)), int(scaled(word.end_time, 2))
        space = separator(previous, word.word)
        if start > position:
            parts.append(f"{{\\k{start - position}}}{space}")
            space = ""
        start = max(start, position)
        parts.append(f"{{\\k{max(end - start, 0)}}}{space}{_ass_escape(word.word)}")
        position, previous = max(end, start), word.word
    return "".join(parts)


def _ass(cues: Sequence[Cue], meta: dict) -> str:
    lines = [f"Dialogue: 0,{format_timestamp(c.start, 'ass')},{format_timestamp(c.end, 'ass')},"
             f"Default,,0,0,0,,{_karaoke(c)}" for c in cues]
    return _ASS_HEADER + "".join(line + "\n" for line in lines)


def _csv(words: Sequence[WordTiming], meta: dict) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["word", "start_time", "end_time", "confidence"])
    for word in words:
        confidence = "" if word.confidence is None else f"{float(word.confidence):.3f}"
        writer.writerow([word.word, format_seconds(word.start_time),
                         format_seconds(word.end_time), confidence])
    return buffer.getvalue()


def _json(words: Sequence[WordTiming], meta: dict) -> str:
    document = {**meta, "word_count": len(words), "words": [w.to_dict() for w in words]}
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


_CUE_WRITERS: Dict[str, Callable[[Sequence[Cue], dict], str]] = {
    "srt": _srt, "vtt": _vtt, "ass": _ass}
_WORD_WRITERS: Dict[str, Callable[[Sequence[WordTiming], dict], str]] = {
    "csv": _csv, "json": _json}


def render(fmt: str, words: Sequence[WordTiming], *, job_id: str, method: str,
           language: str, cues: str = "word") -> str:
    """The text of one timing file in format ``fmt``."""
    if fmt not in FORMATS:
        raise ValueError(f"timing format {fmt!r} is not one of {', '.join(FORMATS)}")
    if cues not in CUE_MODES:
        raise ValueError(f"subtitle cues {cues!r} is not one of {', '.join(CUE_MODES)}")
    meta = {"job_id": job_id, "method": method, "language": language}
    if fmt in _WORD_WRITERS:
        return _WORD_WRITERS[fmt](list(words), meta)
    return _CUE_WRITERS[fmt](group_cues(words, cues), meta)
