"""Word timings written as SRT, WebVTT, CSV, JSON or ASS.

No torch, numpy or model code: the handler and the tests use this without
loading any engine. The cues (which words, which lines, when) come from
``worker.timing.cues``; this module only spells them in each format.

One timestamp formatter serves every format; what differs between formats
(decimal separator, hour digits, fractional digits) is data in ``_CLOCKS``.
Times are rounded half up on their decimal value (0.9995 s is 1.000 s, not
0.999 s as binary float rounding would give), and the carry goes into the
seconds, minutes and hours instead of producing ``00:00:00,1000``.

Why not pysubs2's writers (1.8.1, used by the tests as an independent
reader): it keeps times as integer milliseconds, so ASS centiseconds would be
rounded twice; it clamps ASS times at 9:59:59.99; and its SRT/VTT writers read
event text as ASS markup (``{\\b1}`` becomes ``<b>``) without escaping ``&``
or ``<``. These writers are short and exact instead.
"""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from typing import Optional, Sequence

from worker.core.timings import WordTiming, round_time, scaled
from worker.text.words import separator
from worker.timing.cues import Cue, build_cues
from worker.timing.subtitle_options import AssStyle, SubtitleOptions, parse_subtitle

FORMATS = ("srt", "vtt", "csv", "json", "ass")
CUE_MODES = ("word", "phrase")

__all__ = ["CUE_MODES", "FORMATS", "Cue", "SubtitleOptions", "WordTiming", "format_seconds",
           "format_timestamp", "render"]


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


def _look_alikes(text: str) -> str:
    # ASS has no escape for override braces and a backslash starts \N, \h...;
    # SRT and VTT readers (ffmpeg, pysubs2, VLC) hand their text to an ASS
    # renderer too. Look-alikes keep a word from ever turning into a tag.
    text = text.replace("\\", "\uff3c").replace("{", "(").replace("}", ")")
    return text.replace("\r", " ").replace("\n", " ")


def _srt_text(line: str) -> str:
    # SRT has no entities (readers show "&lt;" as is); a "<" that could open
    # a tag (<i>, </b>, <font ...>) becomes a look-alike instead.
    return re.sub(r"<(?=\s*[A-Za-z/])", "\u2039", _look_alikes(line))


def _vtt_text(line: str) -> str:
    # WebVTT cue text is markup: a bare & or < would start an entity or tag.
    line = _look_alikes(line)
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _srt(cues: Sequence[Cue], words, meta: dict, options: SubtitleOptions) -> str:
    blocks = [f"{n}\n{format_timestamp(c.start, 'srt')} --> {format_timestamp(c.end, 'srt')}\n"
              + "".join(_srt_text(line) + "\n" for line in c.lines)
              for n, c in enumerate(cues, start=1)]
    return "\n".join(blocks)


def _vtt(cues: Sequence[Cue], words, meta: dict, options: SubtitleOptions) -> str:
    blocks = [f"{format_timestamp(c.start, 'vtt')} --> {format_timestamp(c.end, 'vtt')}\n"
              + "".join(_vtt_text(line) + "\n" for line in c.lines) for c in cues]
    return "\n".join(["WEBVTT\n"] + blocks)


def ass_colour(colour: str) -> str:
    """``#RRGGBB`` as ASS writes it: ``&HAABBGGRR``, opaque."""
    red, green, blue = colour[1:3], colour[3:5], colour[5:7]
    return f"&H00{blue}{green}{red}".upper()


def _number(value: float) -> str:
    return f"{value:g}"


def _ass_header(style: AssStyle) -> str:
    width, height = style.play_res
    # \k fills syllables from SecondaryColour to PrimaryColour as they are
    # spoken, so with karaoke the primary slot holds the highlight.
    fill, before = ((style.highlight_colour, style.primary_colour) if style.karaoke
                    else (style.primary_colour, style.highlight_colour))
    side = round(width * 0.05)
    fields = ["Default", style.font, _number(style.font_size), ass_colour(fill),
              ass_colour(before), "&H00000000", "&H80000000", "0", "0", "0", "0", "100", "100",
              "0", "0", "1", _number(style.outline), "1", str(style.alignment), str(side),
              str(side), str(style.margin_v), "1"]
    return f"""[Script Info]
; word timings from the F5-TTS worker
ScriptType: v4.00+
PlayResX: {width}
PlayResY: {height}
WrapStyle: 0
ScaledBorderAndShadow: yes

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding
Style: {",".join(fields)}

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
"""


def _centis(seconds: float) -> int:
    return int(scaled(seconds, 2))


def _karaoke(cue: Cue, words: Sequence[WordTiming]) -> str:
    """``{\\kN}`` per word, N in centiseconds, counted on the rounded clock so
    the durations add up to the cue exactly; silences, and the time a cue
    stays after its last word, get empty syllables."""
    position = _centis(cue.start)
    finish = max(_centis(cue.end), position)
    parts, previous = [], ""
    for index in range(*cue.words):
        word = words[index]
        joint = "\\N" if index in cue.line_starts[1:] else separator(previous, word.word)
        start = min(max(_centis(word.start_time), position), finish)
        stop = min(max(_centis(word.end_time), start), finish)
        if start > position:
            parts.append(f"{{\\k{start - position}}}{joint}")
            joint = ""
        parts.append(f"{{\\k{stop - start}}}{joint}{_look_alikes(word.word)}")
        position, previous = stop, word.word
    if finish > position:
        parts.append(f"{{\\k{finish - position}}}")
    return "".join(parts)


def _ass(cues: Sequence[Cue], words, meta: dict, options: SubtitleOptions) -> str:
    events = []
    for cue in cues:
        text = (_karaoke(cue, words) if options.ass.karaoke
                else "\\N".join(_look_alikes(line) for line in cue.lines))
        events.append(f"Dialogue: 0,{format_timestamp(cue.start, 'ass')},"
                      f"{format_timestamp(cue.end, 'ass')},Default,,0,0,0,,{text}\n")
    return _ass_header(options.ass) + "".join(events)


def _csv(cues: Sequence[Cue], words, meta: dict, options: SubtitleOptions) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["word", "start_time", "end_time", "confidence"])
    for word in words:
        confidence = "" if word.confidence is None else f"{float(word.confidence):.3f}"
        writer.writerow([word.word, format_seconds(word.start_time),
                         format_seconds(word.end_time), confidence])
    return buffer.getvalue()


def _json(cues: Sequence[Cue], words, meta: dict, options: SubtitleOptions) -> str:
    document = {**meta, "word_count": len(words), "words": [w.to_dict() for w in words],
                "cues": [{"start": round_time(c.start), "end": round_time(c.end), "text": c.text,
                          "lines": list(c.lines), "words": list(c.words)} for c in cues]}
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


_WRITERS = {"srt": _srt, "vtt": _vtt, "csv": _csv, "json": _json, "ass": _ass}


def render(fmt: str, words: Sequence[WordTiming], *, job_id: str, method: str,
           language: Optional[str], cues: str = "word",
           subtitle: Optional[SubtitleOptions] = None) -> str:
    """The text of one timing file in format ``fmt``: cues of one word each
    (``word``) or readable phrases (``phrase``), tuned by ``subtitle`` (the
    validated request object; a dict is validated here)."""
    if fmt not in FORMATS:
        raise ValueError(f"timing format {fmt!r} is not one of {', '.join(FORMATS)}")
    if cues not in CUE_MODES:
        raise ValueError(f"subtitle cues {cues!r} is not one of {', '.join(CUE_MODES)}")
    options = parse_subtitle(subtitle)
    words = list(words)
    meta = {"job_id": job_id, "method": method, "language": language}
    # CSV lists words only; every other format is cut into cues.
    built = [] if fmt == "csv" else build_cues(words, cues, options, language)
    return _WRITERS[fmt](built, words, meta, options)
