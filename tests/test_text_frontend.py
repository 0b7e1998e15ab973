"""The text front end: cleaning, nothing to say, pause tags, words, pronunciations,
language, and the map from spoken words back to written ones. Pure Python."""
from __future__ import annotations

import pytest

from worker.core.errors import WorkerError
from worker.text.cleaning import clean_text
from worker.text.frontend import Pause, prepare_text, written_spans
from worker.text.language import Language, detect_language, resolve_language
from worker.text.pronunciations import validate_pronunciations
from worker.text.words import join_words, split_words


def invalid(call, *args, **kwargs) -> str:
    with pytest.raises(WorkerError) as caught:
        call(*args, **kwargs)
    assert caught.value.code == "invalid_input"
    return caught.value.message


# ---- cleaning ---------------------------------------------------------------------

def test_control_characters_dropped_and_whitespace_made_spaces():
    text = "a\tb\nc\r\nd\x00e\x07f\u200bg\u00adh\ufeffi\ue000j\u2028k\u00a0l\u3000m"
    assert clean_text(text) == "a b c  def" + "ghij k l m"
    prepared = prepare_text(text, normalize=False)
    assert prepared.written == ["a", "b", "c", "def" "ghij", "k", "l", "m"]


def test_cleaning_composes_and_keeps_joiners():
    assert clean_text("Cre\u0300me") == "Crème"
    family = "\U0001F468\u200d\U0001F469\u200d\U0001F467"
    assert clean_text(family) == family


def test_lone_surrogates_are_dropped():
    assert prepare_text("ok\ud800 go").written == ["ok", "go"]


@pytest.mark.parametrize("text", [
    "...", "?!  --", "\U0001F600\U0001F389", "\x00\x01\x02\t\n", "[pause:1s]",
    '<break time="1s"/> !!! [pause:2s]', "   ", "\u200b\u200d", "★ ♥ → ©",
])
def test_nothing_to_say_is_invalid_input(text):
    assert "nothing to say" in invalid(prepare_text, text)


def test_one_digit_or_letter_is_enough():
    assert prepare_text("\U0001F600 7 \U0001F600").spoken_text == "seven"
    assert prepare_text("...a...").spoken_text == "...a..."


# ---- pauses -----------------------------------------------------------------------

@pytest.mark.parametrize("tag, seconds", [
    ("[pause:1.5s]", 1.5), ("[pause:300ms]", 0.3), ("[PAUSE:2S]", 2.0),
    ("[ pause : 0.75 s ]", 0.75), ("[pause:.5s]", 0.5), ("[pause:10s]", 10.0),
    ("[pause:50ms]", 0.05), ('<break time="750ms"/>', 0.75), ("<break time='2s'/>", 2.0),
    ('<BREAK TIME="1.25S" />', 1.25), ('<break strength="x-weak"/>', 0.1),
    ('<break strength="weak"/>', 0.25), ('<break strength="medium"/>', 0.5),
    ('<break strength="strong"/>', 0.75), ('<break strength="x-strong"/>', 1.2),
    ("<break/>", 0.5), ('<break time="1s"></break>', 1.0),
    ('<break strength="weak" time="3s"/>', 3.0),
])
def test_every_pause_form(tag, seconds):
    prepared = prepare_text(f"one {tag} two")
    assert prepared.written == ["one", "two"]
    assert prepared.pauses == (Pause(seconds, 0),)


def test_a_tag_separates_words_and_appears_in_none():
    prepared = prepare_text("a[pause:1s]b<break/>c")
    assert prepared.written == ["a", "b", "c"]
    assert prepared.pauses == (Pause(1.0, 0), Pause(0.5, 1))
    assert prepared.spoken_text == "a [pause:1s] b [pause:0.5s] c"


def test_adjacent_pauses_add_up_and_lead_and_tail_are_kept():
    prepared = prepare_text("[pause:1s][pause:500ms] hi [pause:2s] <break time='1s'/> there "
                            "[pause:0.25s]")
    assert prepared.pauses == (Pause(1.5, -1), Pause(3.0, 0), Pause(0.25, 1))
    assert prepared.spoken_text == "[pause:1.5s] hi [pause:3s] there [pause:0.25s]"


def test_pause_around_unspoken_word_still_counts():
    prepared = prepare_text("hi [pause:1s] \U0001F600 [pause:1s] there")
    assert prepared.pauses_between() == (0.0, [2.0, 0.0])


@pytest.mark.parametrize("tag", [
    "[pause]", "[pause:]", "[pause:abc]", "[pause:1.5]", "[pause:2m]", "[pause:1.5sec]",
    "[pause 1s]", "[pause:1s", "[pause:-1s]", '<break time="fast"/>', '<break time="1"/>',
    '<break strength="loud"/>', '<break foo="1"/>', "<break time=1s/>", "</break>",
    '<break time="1s" time="2s"/>', "<break", "[pause:1e3ms]",
])
def test_malformed_tags_are_named(tag):
    message = invalid(prepare_text, f"say {tag} this")
    assert "malformed pause tag" in message
    assert tag in message


@pytest.mark.parametrize("tag", ["[pause:0.01s]", "[pause:11s]", "[pause:20000ms]",
                                 '<break time="0ms"/>', '<break time="10.5s"/>',
                                 "[pause:0s]"])
def test_out_of_range_pauses_are_invalid(tag):
    message = invalid(prepare_text, f"say {tag} this")
    assert tag in message and "0.05 to 10 s" in message


def test_words_that_only_look_like_tags_are_words():
    assert prepare_text("[pauses] <breakfast> now").written == ["[pauses]", "<breakfast>", "now"]


def test_pause_tags_refused_where_not_allowed():
    message = invalid(prepare_text, "a [pause:1s] b", pauses_allowed=False)
    assert "[pause:1s]" in message and "not accepted" in message
    assert prepare_text("a b", pauses_allowed=False).written == ["a", "b"]


# ---- words ------------------------------------------------------------------------

@pytest.mark.parametrize("text, words", [
    ("สวัสดีครับ", ["ส", "วั", "ส", "ดี", "ค", "รั", "บ"]),
    ("ສະບາຍດີ", ["ສ", "ະ", "ບ", "າ", "ຍ", "ດີ"]),
    ("សួស្តី", ["សួ", "ស្តី"]),
    ("မင်္ဂလာပါ", ["မ", "င်္ဂ", "လာ", "ပါ"]),
    ("ไทย 2024 ครับ", ["ไ", "ท", "ย", "2024", "ค", "รั", "บ"]),
    ("価格は45%，¥45。", ["価", "格", "は", "45%，", "¥45。"]),
    ("hello，world", ["hello，", "world"]),
    ("Crème\u0301 go", ["Crème\u0301", "go"]),
])
def test_words_of_unspaced_scripts_are_graphemes(text, words):
    assert split_words(text) == words
    assert split_words(join_words(words)) == words


def test_thai_spaces_survive_in_the_model_text():
    assert prepare_text("สวัสดีครับ ผมชื่อ").spoken_text == "สวัสดีครับ ผมชื่อ"


def test_emoji_and_dashes_are_words_spoken_as_nothing():
    prepared = prepare_text("Hi \U0001F44B\U0001F3FD there — friend \U0001F1EB\U0001F1F7!")
    assert prepared.written == ["Hi", "\U0001F44B\U0001F3FD", "there", "—", "friend",
                                "\U0001F1EB\U0001F1F7!"]
    assert [word.spoken for word in prepared.words] == ["Hi", "", "there", "", "friend!", ""]
    assert prepared.spoken_text == "Hi there friend!"


def test_standalone_closing_punctuation_joins_the_word_before():
    prepared = prepare_text("Bonjour ! Ça va ?", language="fr")
    assert prepared.spoken_text == "Bonjour! Ça va?"
    assert [w.spoken_by for w in prepared.words] == [0, 0, 2, 3, 3]


# ---- pronunciations ---------------------------------------------------------------

def test_pronunciations_whole_word_case_insensitive_punctuation_kept():
    prepared = prepare_text("Nguyen met NGUYEN, (nguyen)! Nguyens left.",
                            pronunciations={"Nguyen": "Win"})
    assert prepared.spoken_text == "Win met Win, (Win)! Nguyens left."


def test_request_pronunciations_win_over_the_voice():
    prepared = prepare_text("Siobhan and Niamh", pronunciations={"siobhan": "Shivawn"},
                            voice_pronunciations={"Siobhan": "Sio-bahn", "Niamh": "Neeve"})
    assert prepared.spoken_text == "Shivawn and Neeve"


def test_multi_word_and_cjk_keys():
    prepared = prepare_text("I love New York! New [pause:1s] York.",
                            pronunciations={"New York": "Noo Yawk City"})
    assert prepared.spoken_text == "I love Noo Yawk City! New [pause:1s] York."
    assert prepared.words[3].spoken == "" and prepared.words[3].spoken_by == 2
    chinese = prepare_text("我去重庆。", pronunciations={"重庆": "崇庆"})
    assert chinese.spoken_text == "我去崇庆。"
    assert [w.spoken for w in chinese.words] == ["我", "去", "崇", "庆。"]


def test_pronunciations_come_before_normalization():
    prepared = prepare_text("R2D2 and 5 km", pronunciations={"R2D2": "Artoo 2"})
    assert prepared.spoken_text == "Artoo two and five kilometers"
    assert prepare_text("Dr. Who", pronunciations={"Dr.": "Doc"}).spoken_text == "Doc. Who"


@pytest.mark.parametrize("value, needle", [
    (["a"], "must be an object"), ({}, "0 entries"),
    ({f"w{n}": "x" for n in range(201)}, "201 entries"),
    ({"x" * 65: "y"}, "65 characters"), ({"word": ""}, "0 characters"),
    ({"word": "y" * 65}, "65 characters"), ({"word": "..."}, "no letter or digit"),
    ({"Word": "a", "word,": "b"}, "same word"), ({"word": 3}, "must be a string"),
    ({"word": "[pause:1s]"}, "brackets"), ({"  ": "x"}, "0 characters"),
])
def test_pronunciation_bounds(value, needle):
    assert needle in invalid(validate_pronunciations, value)


def test_valid_pronunciations_are_cleaned():
    assert validate_pronunciations({" Nguyen ": " Win\t"}) == {"Nguyen": "Win"}


# ---- language ---------------------------------------------------------------------

@pytest.mark.parametrize("text, language", [
    ("今日はいい天気ですね。", "ja"), ("東京タワー", "ja"), ("今天天气很好。", "zh"),
    ("안녕하세요 세계", "ko"), ("สวัสดีครับ", "th"), ("Привет, мир", "ru"),
    ("مرحبا بالعالم", "ar"), ("שלום עולם", "he"), ("Γειά σου κόσμε", "el"),
    ("नमस्ते दुनिया", "hi"), ("Hello world", "en"), ("12345 !!!", "en"),
    ("我喜欢Python和AI", "zh"), ("The word for 'mountain' is 山.", "en"),
    ("Привет hello world", "en"), ("Привет мир hello", "ru"),
    ("Это слово 東京", "ru"), ("Crème brûlée", "en"),
])
def test_language_detected_by_script(text, language):
    assert detect_language(text) == language


def test_language_source():
    assert resolve_language("hello", "DE", "fr") == Language("de", "request")
    assert resolve_language("hello", None, "fr") == Language("fr", "voice")
    assert resolve_language("Привет", None, None) == Language("ru", "detected")
    prepared = prepare_text("Привет", voice_language="uk")
    assert (prepared.language, prepared.language_source) == ("uk", "voice")


def test_unknown_language_note():
    prepared = prepare_text("I have 45", language="hi")
    assert prepared.spoken_text == "I have 45"
    assert prepared.notes and "does not know language 'hi'" in prepared.notes[0]
    assert prepare_text("45", language="en").notes == ()
    assert prepare_text("45", normalize=False).spoken_text == "45"


# ---- the map back to written words ------------------------------------------------

def test_written_spans_from_spoken_spans():
    prepared = prepare_text("It costs $45 \U0001F600 today 1 000 000 times.", language="fr")
    assert [w.text for w in prepared.words] == ["It", "costs", "$45", "\U0001F600", "today",
                                                 "1", "000", "000", "times."]
    spoken = [unit[0] for unit in prepared.units]
    assert spoken == ["It", "costs", "quarante-cinq", "dollars", "today", "un", "million",
                      "times."]
    spans = [(0.0, 0.2, 0.9), (0.2, 0.5, 0.8), (0.5, 0.9, 0.7), (0.9, 1.2, 0.4),
             None, (1.5, 1.6, None), (1.6, 2.0, 0.6), (2.0, 2.3, 1.0)]
    assert written_spans(prepared, prepared.units, spans) == [
        (0.0, 0.2, 0.9), (0.2, 0.5, 0.8), (0.5, 1.2, 0.4), None, None,
        (1.5, 2.0, 0.6), (1.5, 2.0, 0.6), (1.5, 2.0, 0.6), (2.0, 2.3, 1.0)]


def test_written_spans_needs_one_span_per_spoken_word():
    prepared = prepare_text("one two")
    with pytest.raises(ValueError):
        written_spans(prepared, prepared.units, [None])


def test_spoken_words_split_back_from_the_spoken_text():
    text = "Dr. Smith paid $1,234.50 on 3/4/2025 at 10:30am — 你好，世界！ สวัสดี \U0001F600 ok."
    prepared = prepare_text(text)
    assert split_words(prepared.spoken_text) == [spoken for spoken, _ in prepared.units]
    owners = [index for _, index in prepared.units]
    assert owners == sorted(owners)


def test_the_front_end_imports_no_torch():
    import subprocess
    import sys

    code = ("import sys, worker.text.frontend, worker.text.chunking; "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
