"""timing_formats: every format written, then read back by an independent reader."""
from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from decimal import Decimal

import pytest

from timing_formats import (
    CUE_MODES,
    FORMATS,
    SubtitleOptions,
    WordTiming,
    format_timestamp,
    render,
)
from worker.timing.cues import build_cues

# Edge times on purpose: 0, a .9995 that rounds up across a second, exactly one
# hour, and past ten hours; times in milliseconds and centiseconds as a person
# would round them (half up on the written decimal).
WORDS = [
    WordTiming("Hello,", 0.0, 0.9995, 0.91),
    WordTiming("world.", 0.9995, 1.5, None),
    WordTiming("A&B", 1.6, 2.2, 0.5),
    WordTiming("naïve", 2.2, 2.8, 0.75),
    WordTiming("café—ok", 3599.5, 3600.0, 0.6),
    WordTiming("hour!", 3600.0, 3601.25, 0.6),
    WordTiming('"quoted,"', 36000.0, 36001.2345, 0.5),
    WordTiming("你好。", 36002.0, 36002.5, None),
]
MS = [(0, 1000), (1000, 1500), (1600, 2200), (2200, 2800), (3599500, 3600000),
      (3600000, 3601250), (36000000, 36001235), (36002000, 36002500)]
# Word cues stay min_duration (0.833 s) where the gap after them allows, never
# over the next cue: "world." runs to 1.6, "naïve" and the last word 0.833 s.
CUE_MS = [(0, 1000), (1000, 1600), (1600, 2200), (2200, 3033), (3599500, 3600000),
          (3600000, 3601250), (36000000, 36001235), (36002000, 36002833)]
CUE_CS = [(0, 100), (100, 160), (160, 220), (220, 303), (359950, 360000),
          (360000, 360125), (3600000, 3600123), (3600200, 3600283)]
TEN_HOURS_MS = 36_000_000
META = {"job_id": "job-123", "method": "whisperx", "language": "en"}


def _render(fmt, words=WORDS, cues="word"):
    return render(fmt, words, cues=cues, **META)


@pytest.mark.parametrize("seconds, srt, vtt, ass", [
    (0, "00:00:00,000", "00:00:00.000", "0:00:00.00"),
    (0.9995, "00:00:01,000", "00:00:01.000", "0:00:01.00"),
    (0.9994, "00:00:00,999", "00:00:00.999", "0:00:01.00"),
    (0.994, "00:00:00,994", "00:00:00.994", "0:00:00.99"),
    (0.995, "00:00:00,995", "00:00:00.995", "0:00:01.00"),
    (59.9995, "00:01:00,000", "00:01:00.000", "0:01:00.00"),
    (3599.9995, "01:00:00,000", "01:00:00.000", "1:00:00.00"),
    (3600, "01:00:00,000", "01:00:00.000", "1:00:00.00"),
    (3600.0, "01:00:00,000", "01:00:00.000", "1:00:00.00"),
    (36000.5, "10:00:00,500", "10:00:00.500", "10:00:00.50"),
    (37230.123, "10:20:30,123", "10:20:30.123", "10:20:30.12"),
    (360000, "100:00:00,000", "100:00:00.000", "100:00:00.00"),
])
def test_timestamps_round_half_up_and_carry(seconds, srt, vtt, ass):
    assert format_timestamp(seconds, "srt") == srt
    assert format_timestamp(seconds, "vtt") == vtt
    assert format_timestamp(seconds, "ass") == ass


@pytest.mark.parametrize("bad", [-0.001, float("nan"), float("inf")])
def test_timestamps_refuse_impossible_times(bad):
    with pytest.raises(ValueError, match="finite number >= 0"):
        format_timestamp(bad, "srt")


def test_word_timing_to_dict_rounds_to_milliseconds():
    assert WordTiming("x", 0.9995, 3600.00049, 0.12345).to_dict() == {
        "word": "x", "start_time": 1.0, "end_time": 3600.0, "confidence": 0.123}
    assert WordTiming("y", 0, 0, None).to_dict()["confidence"] is None


def test_every_format_spells_the_edge_times():
    srt, vtt, ass = _render("srt"), _render("vtt"), _render("ass")
    for text, zero, one, hour, ten in [
            (srt, "00:00:00,000", "00:00:01,000", "01:00:00,000", "10:00:01,235"),
            (vtt, "00:00:00.000", "00:00:01.000", "01:00:00.000", "10:00:01.235"),
            (ass, "0:00:00.00", "0:00:01.00", "1:00:00.00", "10:00:01.23")]:
        assert f"{zero} --> {one}" in text or f"{zero},{one}" in text
        assert hour in text and ten in text
    assert "1.000,1.500" in _render("csv") and "36000.000,36001.235" in _render("csv")
    words = json.loads(_render("json"))["words"]
    assert [words[1]["start_time"], words[5]["start_time"], words[6]["end_time"]] == [
        1.0, 3600.0, 36001.235]


def _ms(event_times):
    return [(start, end) for start, end in event_times]


def test_srt_reads_back_with_pysubs2():
    import pysubs2

    subs = pysubs2.SSAFile.from_string(_render("srt"), format_="srt")
    assert _ms((e.start, e.end) for e in subs) == CUE_MS
    assert [e.plaintext for e in subs] == [w.word for w in WORDS]


def test_vtt_reads_back_with_pysubs2_and_webvtt():
    import pysubs2
    import webvtt

    text = _render("vtt")
    assert text.startswith("WEBVTT\n\n")
    subs = pysubs2.SSAFile.from_string(text, format_="vtt")
    assert _ms((e.start, e.end) for e in subs) == CUE_MS
    captions = webvtt.from_buffer(io.StringIO(text))
    times = [(_vtt_ms(c.start), _vtt_ms(c.end)) for c in captions]
    assert times == CUE_MS
    # WebVTT text is markup: the ampersand is escaped, and reads back as itself.
    assert "A&amp;B" in text and "A&B" not in text
    assert [c.text for c in captions][3] == "naïve"


def _vtt_ms(stamp: str) -> int:
    hours, minutes, seconds = stamp.split(":")
    return round((int(hours) * 3600 + int(minutes) * 60 + Decimal(seconds)) * 1000)


def test_ass_reads_back_with_pysubs2_and_ass():
    import ass
    import pysubs2

    text = _render("ass")
    subs = pysubs2.SSAFile.from_string(text, format_="ass")
    assert _ms((e.start, e.end) for e in subs) == [(a * 10, b * 10) for a, b in CUE_CS]
    document = ass.parse_string(text)
    times = [(round(e.start.total_seconds() * 100), round(e.end.total_seconds() * 100))
             for e in document.events]
    assert times == CUE_CS
    assert (document.info["PlayResX"], document.info["PlayResY"]) == (1920, 1080)
    assert [re.sub(r"\{[^}]*\}", "", e.text) for e in document.events] == [
        w.word for w in WORDS]


def test_csv_reads_back():
    rows = list(csv.DictReader(io.StringIO(_render("csv"))))
    assert list(rows[0]) == ["word", "start_time", "end_time", "confidence"]
    assert [r["word"] for r in rows] == [w.word for w in WORDS]
    assert [(int(Decimal(r["start_time"]) * 1000), int(Decimal(r["end_time"]) * 1000))
            for r in rows] == MS
    assert rows[0]["confidence"] == "0.910" and rows[1]["confidence"] == ""


def test_json_reads_back():
    document = json.loads(_render("json"))
    assert {k: document[k] for k in META} == META
    assert document["word_count"] == len(WORDS)
    assert [w["word"] for w in document["words"]] == [w.word for w in WORDS]
    assert [(round(w["start_time"] * 1000), round(w["end_time"] * 1000))
            for w in document["words"]] == MS
    assert document["words"][1]["confidence"] is None
    assert set(document["words"][0]) == {"word", "start_time", "end_time", "confidence"}


def _ffmpeg() -> str:
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError:
        pytest.fail("no ffmpeg: install it (apt-get install ffmpeg) or pip install imageio-ffmpeg")
    return imageio_ffmpeg.get_ffmpeg_exe()


@pytest.mark.parametrize("fmt", ["srt", "vtt", "ass"])
@pytest.mark.parametrize("cues", CUE_MODES)
def test_ffmpeg_converts_each_subtitle_file(tmp_path, fmt, cues):
    import pysubs2

    source = tmp_path / f"timings.{fmt}"
    source.write_text(_render(fmt, cues=cues), encoding="utf-8")
    expected = pysubs2.load(str(source))
    for target in ("srt", "ass"):
        out = tmp_path / f"converted-{fmt}.{target}"
        run = subprocess.run([_ffmpeg(), "-nostdin", "-v", "error", "-y", "-i", str(source),
                              str(out)], capture_output=True, text=True, timeout=60)
        assert run.returncode == 0 and not run.stderr.strip(), run.stderr
        converted = pysubs2.load(str(out))
        assert len(converted) == len(expected)
        for got, want in zip(converted, expected):
            if target == "ass" and want.end >= TEN_HOURS_MS:
                continue  # ASS writers (ffmpeg's, pysubs2's) stop at 9:59:59.99
            # ffmpeg's ASS output keeps centiseconds; SRT keeps milliseconds.
            assert abs(got.start - want.start) <= 10 and abs(got.end - want.end) <= 10


def _timeline(count: int, step: float = 0.3, pause_after=()):
    words, now = [], 0.0
    texts = [f"word{n}" for n in range(count)]
    for index, text in enumerate(texts):
        words.append(WordTiming(text, now, now + step * 0.9, 0.9))
        now += step + (2.0 if index in pause_after else 0.0)
    return words


def test_word_cues_are_one_per_word():
    words = _timeline(5)
    assert [c.text for c in build_cues(words, "word")] == [w.word for w in words]
    assert _render("srt", words).count(" --> ") == 5


def test_phrase_cues_stay_readable():
    words = _timeline(40, pause_after={25})
    words[6] = WordTiming("end.", words[6].start_time, words[6].end_time, None)
    cues = build_cues(words, "phrase")
    assert 1 < len(cues) < len(words)
    assert [i for c in cues for i in range(*c.words)] == list(range(len(words)))
    assert all(len(c.lines) <= 2 and all(len(line) <= 42 for line in c.lines) for c in cues)
    assert all(c.end - c.start <= 7 for c in cues)
    assert cues[0].words == (0, 7)                      # a sentence end closes the cue
    assert any(c.words[0] == 26 for c in cues)           # so does a long pause
    srt = _render("srt", words, cues="phrase")
    assert srt.count(" --> ") == len(cues)


def test_phrase_cues_join_cjk_without_spaces():
    words = [WordTiming("你", 0, 0.2, None), WordTiming("好，", 0.2, 0.4, None),
             WordTiming("AI", 0.4, 0.6, None), WordTiming("世界。", 0.6, 0.9, None)]
    (cue,) = build_cues(words, "phrase")
    assert cue.text == "你好，AI 世界。"


def test_ass_karaoke_durations_add_up_to_each_cue():
    import ass

    words = _timeline(12, step=0.37, pause_after={3})
    document = ass.parse_string(_render("ass", words, cues="phrase"))
    assert len(document.events) >= 2
    for event in document.events:
        ticks = [int(k) for k in re.findall(r"\\k(\d+)", event.text)]
        duration = round((event.end - event.start).total_seconds() * 100)
        assert sum(ticks) == duration
        syllables = re.findall(r"\{\\k\d+\}(?:\s|\\N)*(word\d+)", event.text)
        assert " ".join(syllables) == re.sub(r"\{[^}]*\}", "", event.text).replace("\\N", " ")


def test_ass_text_cannot_open_override_tags():
    text = _render("ass", [WordTiming("{\\b1}bold", 0, 1, None)])
    dialogue = text.strip().splitlines()[-1]
    assert dialogue.endswith("(＼b1)bold")


def test_render_refuses_unknown_choices():
    with pytest.raises(ValueError, match="srt, vtt, csv, json, ass"):
        _render("txt")
    with pytest.raises(ValueError, match="word, phrase"):
        _render("srt", cues="sentence")
    assert FORMATS == ("srt", "vtt", "csv", "json", "ass")


def test_render_takes_the_subtitle_options_or_a_dict_it_validates():
    from worker.core.errors import WorkerError

    words = _timeline(30)
    narrow = _render_with("srt", words, SubtitleOptions(max_chars_per_line=10, max_lines=1))
    assert narrow == _render_with("srt", words, {"max_chars_per_line": 10, "max_lines": 1})
    assert narrow != _render_with("srt", words, None)
    with pytest.raises(WorkerError, match=r"invalid_input: subtitle\.max_lines: "):
        _render_with("srt", words, {"max_lines": 9})


def _render_with(fmt, words, subtitle):
    return render(fmt, words, cues="phrase", subtitle=subtitle, **META)
