"""Subtitle files from the cue builder, read back by independent readers
(pysubs2, webvtt-py, the ``ass`` package, ffmpeg) and burned into video
frames by ffmpeg's libass filter."""
from __future__ import annotations

import html
import io
import json
import re
import shutil
import subprocess

import pytest

from timing_formats import CUE_MODES, ass_colour, render
from worker.core.timings import WordTiming
from worker.timing.cues import build_cues
from worker.timing.subtitle_options import AssStyle, SubtitleOptions

FONTS = "/usr/share/fonts/truetype/dejavu"
NARRATION = ("In the small village by the sea, an old carpenter built a boat with only three "
             "tools: a saw, a chisel and some patience. It took him four summers, and the "
             "whole village came down to the shore to watch it sail.")


def speak(text, cps=15.0):
    words, now = [], 0.0
    for token in text.split():
        length = len(token) / cps
        words.append(WordTiming(token, round(now, 3), round(now + length, 3), 0.9))
        now += length + 1 / cps + (0.5 if token[-1] in ".!?" else 0.0)
    return words


WORDS = speak(NARRATION)
OPTION_SETS = [SubtitleOptions(),
               SubtitleOptions(fps=23.976, extend_to_next=True, max_words=4),
               SubtitleOptions(max_lines=3, max_chars_per_line=30,
                               ass=AssStyle(karaoke=False, play_res=(1280, 720)))]


def _render(fmt, mode, options, words=WORDS):
    return render(fmt, words, job_id="job-1", method="whisperx", language="en", cues=mode,
                  subtitle=options)


def _expected(mode, options, words=WORDS):
    return build_cues(words, mode, options, "en")


def _ffmpeg(name="ffmpeg") -> str:
    found = shutil.which(name)
    if not found:
        pytest.fail(f"no {name}: apt-get install ffmpeg")
    return found


@pytest.mark.parametrize("options", OPTION_SETS, ids=["defaults", "fps", "three-lines"])
@pytest.mark.parametrize("mode", CUE_MODES)
def test_srt_vtt_and_ass_read_back_cue_for_cue(mode, options):
    import ass
    import pysubs2
    import webvtt

    cues = _expected(mode, options)
    times = [(round(c.start * 1000), round(c.end * 1000)) for c in cues]
    srt = pysubs2.SSAFile.from_string(_render("srt", mode, options), format_="srt")
    assert [(e.start, e.end) for e in srt] == times
    assert [e.plaintext.split("\n") for e in srt] == [c.lines for c in cues]
    captions = webvtt.from_buffer(io.StringIO(_render("vtt", mode, options)))
    assert [c.lines for c in captions] == [c.lines for c in cues]
    document = ass.parse_string(_render("ass", mode, options))
    assert [(round(e.start.total_seconds() * 100), round(e.end.total_seconds() * 100))
            for e in document.events] == [(round(c.start * 100), round(c.end * 100)) for c in cues]
    plain = [re.sub(r"\{[^}]*\}", "", e.text).split("\\N") for e in document.events]
    assert plain == [c.lines for c in cues]


def test_phrase_files_use_two_lines_and_word_files_one_word():
    srt = _render("srt", "phrase", SubtitleOptions())
    blocks = [block.splitlines() for block in srt.strip().split("\n\n")]
    assert any(len(block) == 4 for block in blocks)           # number, times, two lines
    assert all(len(block) <= 4 for block in blocks)
    words = _render("srt", "word", SubtitleOptions()).strip().split("\n\n")
    assert [block.splitlines()[2] for block in words] == [w.word for w in WORDS]


@pytest.mark.parametrize("fmt", ["srt", "vtt", "ass"])
@pytest.mark.parametrize("mode", CUE_MODES)
def test_ffmpeg_reads_every_cue(tmp_path, fmt, mode):
    source = tmp_path / f"cues.{fmt}"
    source.write_text(_render(fmt, mode, SubtitleOptions()), encoding="utf-8")
    decode = subprocess.run([_ffmpeg(), "-nostdin", "-v", "error", "-i", str(source), "-map",
                             "0:s", "-c:s", "ass", "-f", "null", "-"],
                            capture_output=True, text=True, timeout=60)
    assert decode.returncode == 0 and not decode.stderr.strip(), decode.stderr
    count = subprocess.run([_ffmpeg("ffprobe"), "-v", "error", "-count_packets", "-show_entries",
                            "stream=nb_read_packets", "-of", "csv=p=0", str(source)],
                           capture_output=True, text=True, timeout=60)
    assert count.returncode == 0, count.stderr
    assert int(count.stdout.strip()) == len(_expected(mode, SubtitleOptions()))


def test_json_lists_the_words_and_the_cues():
    options = SubtitleOptions(fps=25)
    document = json.loads(_render("json", "phrase", options))
    cues = _expected("phrase", options)
    assert [w["word"] for w in document["words"]] == [w.word for w in WORDS]
    assert len(document["cues"]) == len(cues) > 1
    for entry, cue in zip(document["cues"], cues):
        assert set(entry) == {"start", "end", "text", "lines", "words"}
        first, end = entry["words"]
        assert entry["text"] == " ".join(w["word"] for w in document["words"][first:end])
        assert entry["lines"] == cue.lines and " ".join(entry["lines"]) == entry["text"]
        assert entry["start"] == round(cue.start, 3) and entry["end"] == round(cue.end, 3)
    assert [c["words"][0] for c in document["cues"][1:]] == [
        c["words"][1] for c in document["cues"][:-1]]
    words = json.loads(_render("json", "word", options))["cues"]
    assert [c["words"] for c in words] == [[n, n + 1] for n in range(len(WORDS))]


def test_csv_is_the_same_word_list_for_either_cue_mode():
    assert _render("csv", "word", None) == _render("csv", "phrase", SubtitleOptions(fps=25))


def test_ass_header_carries_the_style():
    import ass

    style = AssStyle(play_res=(1280, 720), font="DejaVu Serif", font_size=48.5,
                     primary_colour="#102030", highlight_colour="#ff8000", outline=1.5,
                     alignment=8, margin_v=25, karaoke=True)
    text = _render("ass", "phrase", SubtitleOptions(ass=style))
    document = ass.parse_string(text)
    assert (document.info["PlayResX"], document.info["PlayResY"]) == (1280, 720)
    (parsed,) = document.styles
    assert (parsed.fontname, parsed.fontsize, parsed.outline, parsed.alignment,
            parsed.margin_v) == ("DejaVu Serif", 48.5, 1.5, 8, 25)
    # Karaoke fills words with PrimaryColour as they are spoken: the highlight.
    assert "Style: Default,DejaVu Serif,48.5,&H000080FF,&H00302010," in text
    assert ass_colour("#FFD700") == "&H0000D7FF" and ass_colour("#102030") == "&H00302010"
    plain = _render("ass", "phrase", SubtitleOptions(ass=AssStyle(karaoke=False)))
    assert "\\k" not in plain and "\\N" in plain
    assert "Style: Default,Arial,64,&H00FFFFFF,&H0000D7FF," in plain


def test_karaoke_ticks_add_up_with_cues_held_past_their_words():
    import ass

    options = SubtitleOptions(extend_to_next=True, fps=25)
    document = ass.parse_string(_render("ass", "phrase", options))
    for event in document.events:
        ticks = sum(int(k) for k in re.findall(r"\\k(\d+)", event.text))
        assert ticks == round((event.end - event.start).total_seconds() * 100)


TRICKY = [WordTiming("<i>a</i>", 0, 0.5, None), WordTiming("{\\b1}b", 0.5, 1, None),
          WordTiming("c\\Nd", 1, 1.5, None), WordTiming("A&B", 1.5, 2, None),
          WordTiming("x<3", 2, 2.5, None)]


@pytest.mark.parametrize("fmt", ["srt", "vtt", "ass"])
def test_text_a_word_carries_never_becomes_markup(tmp_path, fmt):
    import pysubs2

    source = tmp_path / f"tricky.{fmt}"
    source.write_text(_render(fmt, "phrase", SubtitleOptions(), TRICKY), encoding="utf-8")
    out = tmp_path / "converted.ass"
    run = subprocess.run([_ffmpeg(), "-nostdin", "-v", "error", "-y", "-i", str(source),
                          str(out)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    for subs in (pysubs2.load(str(source)), pysubs2.load(str(out))):
        (event,) = subs
        # No tag survives as a tag: no italics/bold override, no line break.
        assert not re.search(r"\{\\[ib]1?\}|\\N", event.text), event.text
        for visible in ("a", "b", "c", "d", "A", "B", "x", "3"):
            assert visible in event.plaintext
    if fmt == "vtt":
        import webvtt

        (caption,) = webvtt.read(str(source))
        # webvtt-py leaves entities as written; a browser shows them decoded.
        assert "A&B" in html.unescape(caption.text) and "x<3" in html.unescape(caption.text)


# --- burned into video frames ------------------------------------------------

RATE = 5  # frames a second sampled from the burned video


def _burn(tmp_path, text: str, seconds: float) -> list:
    """RGB frames (480x270, 1/4 scale) of a black 1920x1080 video with ``text``
    burned in by libass, RATE frames a second."""
    source = tmp_path / "burn.ass"
    source.write_text(text, encoding="utf-8")
    run = subprocess.run(
        [_ffmpeg(), "-nostdin", "-v", "error", "-f", "lavfi", "-i",
         f"color=black:s=1920x1080:r={RATE}:d={seconds}",
         "-vf", f"ass={source}:fontsdir={FONTS},scale=480:270", "-pix_fmt", "rgb24",
         "-f", "rawvideo", "-"], capture_output=True, timeout=120)
    assert run.returncode == 0, run.stderr.decode(errors="replace")
    size = 480 * 270 * 3
    assert len(run.stdout) % size == 0 and run.stdout
    return [run.stdout[n:n + size] for n in range(0, len(run.stdout), size)]


def _pixels(frame: bytes, rows: range):
    for row in rows:
        line = frame[row * 480 * 3:(row + 1) * 480 * 3]
        for col in range(0, len(line), 3):
            yield line[col], line[col + 1], line[col + 2]


def _lit(frame: bytes, rows: range) -> int:
    return sum(1 for pixel in _pixels(frame, rows) if max(pixel) > 60)


def _times(words):
    return [(round(w.start_time, 2), round(w.end_time, 2)) for w in words]


BURN_WORDS = [WordTiming("Subtitles", 0.4, 0.9, None), WordTiming("burned", 0.9, 1.3, None),
              WordTiming("in.", 1.3, 1.6, None), WordTiming("Second", 3.5, 4.0, None),
              WordTiming("cue.", 4.0, 4.4, None)]


@pytest.mark.parametrize("karaoke", [False, True])
def test_ass_burned_into_1080p_frames_shows_each_cue_only_in_its_time(tmp_path, karaoke):
    options = SubtitleOptions(ass=AssStyle(karaoke=karaoke))
    cues = build_cues(BURN_WORDS, "phrase", options, "en")
    assert len(cues) == 2 and cues[0].end < 3.0
    frames = _burn(tmp_path, _render("ass", "phrase", options, BURN_WORDS), 6)
    bottom, top = range(170, 260), range(0, 135)
    for index, frame in enumerate(frames):
        moment = index / RATE
        inside = any(c.start + 0.1 < moment < c.end - 0.1 for c in cues)
        outside = all(moment < c.start - 0.1 or moment > c.end + 0.1 for c in cues)
        if inside:
            assert _lit(frame, bottom) > 100, moment       # the text, in the subtitle area
            assert _lit(frame, top) == 0, moment           # and nowhere else
        elif outside:
            assert _lit(frame, range(0, 270)) == 0, moment
    # At 0.8 s the first word has been spoken: gold (#FFD700) with karaoke,
    # the two words still to come white (#FFFFFF); without karaoke all white.
    middle = frames[round(0.8 * RATE)]
    gold = _columns(middle, bottom, lambda r, g, b: r > 200 and 150 < g < 230 and b < 90)
    white = _columns(middle, bottom, lambda r, g, b: min(r, g, b) > 200)
    assert len(white) > 50
    if karaoke:  # the spoken word is the first, so the gold is left of the white
        assert len(gold) > 50 and max(gold) < min(white)
    else:
        assert not gold


def _columns(frame: bytes, rows: range, colour) -> list:
    """The columns of the pixels in ``rows`` that ``colour(r, g, b)`` accepts."""
    return [index % 480 for index, pixel in enumerate(_pixels(frame, rows)) if colour(*pixel)]


# --- through the handler -------------------------------------------------------

def test_a_tts_job_writes_the_cues_its_subtitle_object_asks_for(tts_worker, monkeypatch):
    from tests.test_voices import fetch

    monkeypatch.setenv("ALIGN_MODEL", "/nonexistent/align-model")  # timings by estimate
    monkeypatch.delenv("GOOGLE_CREDENTIALS_JSON", raising=False)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    text = "The old carpenter built a boat, and the whole village came to watch it sail."
    out = tts_worker({"text": text, "seed": 2, "nfe_step": 4, "return_word_timings": True,
                      "timing_format": "json", "subtitle_cues": "phrase",
                      "subtitle": {"max_words": 3, "fps": 25}})
    assert "error" not in out, out
    document = json.loads(fetch(out["timing_url"]))
    assert [w["word"] for w in document["words"]] == text.split()
    cues = document["cues"]
    assert len(cues) >= len(text.split()) // 3
    assert all(end - first <= 3 for first, end in (c["words"] for c in cues))
    for cue in cues:
        for moment in (cue["start"], cue["end"]):
            assert abs(moment * 25 - round(moment * 25)) < 0.03  # on a frame (ms rounding)
    refused = tts_worker({"text": text, "return_word_timings": True,
                          "subtitle": {"ass": {"alignment": 10}}})
    assert refused["error"].startswith("invalid_input: subtitle.ass.alignment: ")
