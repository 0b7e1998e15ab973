"""The ``subtitle`` object: every bound of the contract, on its own and as part
of a ``tts`` request."""
from __future__ import annotations

from fractions import Fraction

import pytest

from settings import Settings
from worker import schemas
from worker.core.errors import WorkerError
from worker.timing.subtitle_options import FRAME_RATES, AssStyle, SubtitleOptions, parse_subtitle


def test_defaults_follow_the_contract():
    options = parse_subtitle(None)
    assert (options.max_chars_per_line, options.max_lines, options.min_duration,
            options.max_duration, options.max_cps, options.max_words, options.fps,
            options.extend_to_next) == (42, 2, 0.833, 7, 17, None, None, False)
    assert options.ass == AssStyle(play_res=(1920, 1080), font="Arial", font_size=64,
                                   primary_colour="#FFFFFF", highlight_colour="#FFD700",
                                   outline=3, alignment=2, margin_v=60, karaoke=True)
    assert parse_subtitle({}) == options and parse_subtitle(options) is options


# (field path, lowest accepted, highest accepted, a value below, a value above)
BOUNDS = [
    (("max_chars_per_line",), 10, 100, 9, 101),
    (("max_lines",), 1, 3, 0, 4),
    (("min_duration",), 0.2, 5, 0.19, 5.01),
    (("max_duration",), 5, 20, 0.99, 20.01),
    (("max_cps",), 5, 40, 4.9, 40.1),
    (("max_words",), 1, 20, 0, 21),
    (("ass", "font_size"), 8, 400, 7.9, 400.5),
    (("ass", "outline"), 0, 20, -0.1, 20.1),
    (("ass", "alignment"), 1, 9, 0, 10),
    (("ass", "margin_v"), 0, 2000, -1, 2001),
]


def _nest(path, value):
    return {path[0]: value} if len(path) == 1 else {path[0]: {path[1]: value}}


@pytest.mark.parametrize("path, low, high, below, above", BOUNDS,
                         ids=[".".join(b[0]) for b in BOUNDS])
def test_each_number_is_bounded(path, low, high, below, above):
    for value in (low, high):
        parse_subtitle(_nest(path, value))
    for value in (below, above):
        with pytest.raises(WorkerError) as caught:
            parse_subtitle(_nest(path, value))
        assert caught.value.code == "invalid_input"
        assert caught.value.message.startswith("subtitle." + ".".join(path) + ": ")


@pytest.mark.parametrize("play_res, ok", [
    ([100, 100], True), ([7680, 4320], True), ((1280, 720), True), ([99, 1080], False),
    ([1920, 7681], False), ([1920], False), ([1920, 1080, 3], False), ([1920.0, 1080], False),
    ("1920x1080", False)])
def test_play_res_is_two_sides_of_100_to_7680(play_res, ok):
    if ok:
        assert parse_subtitle({"ass": {"play_res": play_res}}).ass.play_res == tuple(play_res)
    else:
        with pytest.raises(WorkerError, match=r"subtitle\.ass\.play_res"):
            parse_subtitle({"ass": {"play_res": play_res}})


@pytest.mark.parametrize("font, ok", [("A", True), ("x" * 64, True), ("DejaVu Sans", True),
                                      ("", False), ("x" * 65, False), ("Arial,Bold", False),
                                      ("Arial\n", False), (12, False)])
def test_font_is_1_to_64_characters_without_commas(font, ok):
    if ok:
        assert parse_subtitle({"ass": {"font": font}}).ass.font == font
    else:
        with pytest.raises(WorkerError, match=r"subtitle\.ass\.font: "):
            parse_subtitle({"ass": {"font": font}})


@pytest.mark.parametrize("field", ["primary_colour", "highlight_colour"])
def test_colours_are_hash_rrggbb(field):
    assert getattr(parse_subtitle({"ass": {field: "#a0b1c2"}}).ass, field) == "#A0B1C2"
    for bad in ("A0B1C2", "#A0B1C", "#A0B1C2FF", "red", "#GGGGGG", 0xFFFFFF):
        with pytest.raises(WorkerError, match=rf"subtitle\.ass\.{field}: .*#RRGGBB"):
            parse_subtitle({"ass": {field: bad}})


def test_fps_is_one_of_the_broadcast_rates():
    for written, exact in [(23.976, Fraction(24000, 1001)), (24, 24), (25, 25),
                           (29.97, Fraction(30000, 1001)), (30, 30), (50, 50),
                           (59.94, Fraction(60000, 1001)), (60, 60),
                           (24000 / 1001, Fraction(24000, 1001))]:
        assert parse_subtitle({"fps": written}).frame_rate == exact
    assert len(FRAME_RATES) == 8 and parse_subtitle({}).frame_rate is None
    for bad in (23.9, 26, 120, 0, -25, "25"):
        with pytest.raises(WorkerError, match=r"subtitle\.fps: "):
            parse_subtitle({"fps": bad})


def test_strict_types():
    for fields in ({"karaoke": 1}, {"karaoke": "true"}):
        with pytest.raises(WorkerError, match=r"subtitle\.ass\.karaoke: "):
            parse_subtitle({"ass": fields})
    for fields in ({"extend_to_next": "yes"}, {"max_lines": 2.0}, {"max_cps": "17"},
                   {"max_words": True}):
        with pytest.raises(WorkerError, match=rf"subtitle\.{next(iter(fields))}: "):
            parse_subtitle(fields)
    assert parse_subtitle({"max_cps": 20, "min_duration": 1}).max_cps == 20.0


def test_unknown_keys_are_refused_with_what_is_accepted():
    with pytest.raises(WorkerError, match=r"subtitle: unknown field 'colour'; accepted: ass, "):
        parse_subtitle({"colour": "#FFFFFF"})
    with pytest.raises(WorkerError, match=r"subtitle\.ass: unknown field 'bold'; accepted: "
                                          r"alignment, font, "):
        parse_subtitle({"ass": {"bold": True}})
    with pytest.raises(WorkerError, match=r"subtitle: input should be a valid dictionary"):
        parse_subtitle("phrase")


def test_min_duration_over_max_duration_is_invalid():
    parse_subtitle({"min_duration": 3, "max_duration": 3})
    with pytest.raises(WorkerError, match=r"subtitle: min_duration \(4\) is over "
                                          r"max_duration \(3\)"):
        parse_subtitle({"min_duration": 4, "max_duration": 3})
    with pytest.raises(Exception, match="min_duration"):
        SubtitleOptions(min_duration=2, max_duration=1)


def test_several_problems_are_named_together():
    with pytest.raises(WorkerError) as caught:
        parse_subtitle({"max_lines": 9, "ass": {"alignment": 0}})
    assert "subtitle.max_lines" in caught.value.message
    assert "subtitle.ass.alignment" in caught.value.message


def _tts(subtitle):
    return schemas.validate("tts", {"text": "hello", "subtitle": subtitle}, Settings())


def test_the_tts_request_takes_and_checks_the_subtitle_object():
    request = _tts({"max_words": 3, "fps": 25, "ass": {"play_res": [1280, 720]}})
    assert request.subtitle.max_words == 3 and request.subtitle.ass.play_res == (1280, 720)
    assert schemas.validate("tts", {"text": "hi"}, Settings()).subtitle == SubtitleOptions()
    for subtitle, expected in [
            ({"ass": {"font_size": 500}}, "subtitle.ass.font_size: input should be less than"),
            ({"bogus": 1}, "subtitle: unknown field 'bogus'; accepted: ass,"),
            ({"min_duration": 4, "max_duration": 2}, "subtitle: min_duration (4) is over"),
            ({"fps": 26}, "subtitle.fps: one of 23.976, 24, 25, 29.97")]:
        with pytest.raises(WorkerError) as caught:
            _tts(subtitle)
        assert caught.value.code == "invalid_input"
        assert expected in caught.value.message, caught.value.message
