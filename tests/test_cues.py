"""worker.timing.cues: one test per cue rule, each built so the rule decides it."""
from __future__ import annotations

import itertools
import math
import random
from fractions import Fraction

import pytest

from worker.core.timings import WordTiming
from worker.text.function_words import FUNCTION_WORDS, binds_forward
from worker.text.words import join_words, split_words
from worker.timing import cues as cue_module
from worker.timing.cues import build_cues, display_width
from worker.timing.subtitle_options import FRAME_RATES, SubtitleOptions

NARRATION = ("In the small village by the sea, an old carpenter built a boat with only three "
             "tools: a saw, a chisel and some patience. It took him four summers, and the "
             "whole village came down to the shore to watch it sail.")


def speak(text, cps=15.0, comma=0.25, stop=0.5, pauses=None):
    """Words of ``text`` timed as a narrator would say them: ``cps`` characters
    a second, short silences after punctuation, ``pauses`` {index: seconds}."""
    words, now = [], 0.0
    for index, token in enumerate(split_words(text)):
        length = len(token) / cps
        words.append(WordTiming(token, round(now, 3), round(now + length, 3), 0.9))
        now += length + 1 / cps
        now += comma if token[-1] in ",;:" else stop if token[-1] in ".!?" else 0.0
        now += (pauses or {}).get(index, 0.0)
    return words


def even(texts, step=0.3, gap=0.0):
    """One word every ``step`` seconds (+ ``gap``), each spoken for 0.9 of it."""
    return [WordTiming(text, n * (step + gap), n * (step + gap) + step * 0.9, None)
            for n, text in enumerate(texts)]


def _options(**fields):
    return SubtitleOptions(**fields)


def _words_of(cue, words):
    return [w.word for w in words[slice(*cue.words)]]


def _ends_of_lines(cues, words):
    """The last word of every line of every cue."""
    ends = []
    for cue in cues:
        starts = list(cue.line_starts) + [cue.words[1]]
        ends.extend(words[end - 1].word for end in starts[1:])
    return ends


def _check_invariants(cues, words):
    assert [i for c in cues for i in range(*c.words)] == list(range(len(words)))
    for cue, following in zip(cues, cues[1:] + [None]):
        assert cue.start == words[cue.words[0]].start_time <= cue.end
        if following is not None:
            assert cue.end <= following.start
        assert cue.text == join_words(_words_of(cue, words))


# --- line and cue limits ----------------------------------------------------

def test_lines_fit_the_width_and_cues_the_line_count():
    words = speak(" ".join(["lorem ipsum dolor sit amet consectetur"] * 12))
    for limit, lines in [(42, 2), (20, 1), (30, 3)]:
        cues = build_cues(words, "phrase", _options(max_chars_per_line=limit, max_lines=lines))
        _check_invariants(cues, words)
        assert all(len(c.lines) <= lines for c in cues)
        assert all(len(line) <= limit for c in cues for line in c.lines)
        # Limits are used, not just respected: some cue fills its lines.
        assert max(len(c.lines) for c in cues) == lines


def test_cjk_characters_count_as_two_columns():
    assert display_width("你好") == 4 and display_width("ab") == 2 and display_width("e\u0301") == 1
    hanzi = "一位老木匠只用三件工具造了一条船" + "他花了四个夏天整个村子的人都来看它起航"
    words = even(list(hanzi), 0.2)
    (cue,) = build_cues(words, "phrase", _options())
    # 35 characters would fit one 42-column line if each counted once.
    assert len(cue.lines) == 2 and all(len(line) <= 21 for line in cue.lines)
    assert all(display_width(line) <= 42 for line in cue.lines)


def test_a_word_wider_than_a_line_gets_a_line_or_a_cue_of_its_own():
    url = "https://example.com/a/very/long/path/that/never/ends/anywhere/at/all"
    words = speak(f"Read more at {url} before the end of the week please")
    (cue, *rest) = [c for c in build_cues(words, "phrase", _options()) if url in c.text]
    assert url in cue.lines and len(url) > 42
    for cue in build_cues(words, "phrase", _options(max_lines=1)):
        assert cue.lines == [url] or url not in cue.text


def test_max_words():
    words = speak(NARRATION)
    cues = build_cues(words, "phrase", _options(max_words=3))
    _check_invariants(cues, words)
    assert all(c.words[1] - c.words[0] <= 3 for c in cues)
    assert sum(c.words[1] - c.words[0] == 3 for c in cues) >= len(cues) // 2
    assert max(c.words[1] - c.words[0] for c in build_cues(words, "phrase")) > 3


# --- durations -------------------------------------------------------------

def test_max_duration_caps_the_speech_a_cue_covers():
    words = even([f"w{n}" for n in range(80)], step=0.25)  # 20 s, no punctuation
    for limit in (7, 3):
        cues = build_cues(words, "phrase", _options(max_duration=limit, max_lines=3,
                                                    max_chars_per_line=100))
        spoken = [words[c.words[1] - 1].end_time - c.start for c in cues]
        assert all(c.end - c.start <= limit + 1e-9 for c in cues)
        assert all(length <= limit + 1e-9 for length in spoken)
        assert max(spoken) > limit - 0.6


def test_min_duration_extends_into_the_gap_but_never_over_the_next_cue():
    words = [WordTiming("Hi.", 0.0, 0.2, None), WordTiming("Then.", 3.0, 3.1, None),
             WordTiming("Now.", 3.4, 3.6, None)]
    for mode in ("word", "phrase"):  # max_words=1 keeps the phrase cues apart
        first, second, third = build_cues(words, mode, _options(min_duration=1.5, max_words=1))
        assert (first.start, first.end) == (0.0, 1.5)
        assert second.end == 3.4                      # stops where the next one starts
        assert third.end == pytest.approx(3.4 + 1.5)


def test_reading_speed_keeps_a_cue_up_long_enough_where_the_gap_allows():
    words = [WordTiming(w, 0.1 * n, 0.1 * n + 0.09, None)
             for n, w in enumerate("Extraordinary circumstances demanded swift action.".split())]
    (cue,) = build_cues(words, "phrase", _options(max_cps=17))
    assert cue.end == pytest.approx(cue.start + len(cue.text) / 17)
    (fast,) = build_cues(words, "phrase", _options(max_cps=40))
    assert fast.end == pytest.approx(cue.start + len(cue.text) / 40)


def test_reading_speed_cuts_a_cue_smaller_at_a_gap_it_can_use():
    # Said at 25 characters a second, with one 0.7 s silence after "rowed":
    # allowed 40 cps the first cue fills two lines; held to 17 it is cut
    # small, just past the silence, so that it can stay long enough.
    text = ("seventeen tired sailors rowed home slowly through heavy rain and then they "
            "all sat down together by the warm fire to eat and drink and sing old songs "
            "until very late at night")
    words = speak(text, cps=25, pauses={3: 0.7})
    fast = build_cues(words, "phrase", _options(max_cps=40), "en")
    assert fast[0].words[1] > 10
    cues = build_cues(words, "phrase", _options(max_cps=17), "en")
    first = cues[0]
    assert 4 <= first.words[1] <= 6 and len(first.lines) == 1
    # It asks about 17 cps where the two-line cue asked over 20.
    rate = display_width(first.text) / (first.end - first.start)
    assert rate <= 17.5 < 20 < display_width(fast[0].text) / (fast[0].end - fast[0].start)


# --- frames ----------------------------------------------------------------

@pytest.mark.parametrize("fps", sorted(FRAME_RATES))
def test_times_snap_to_frames_with_two_frames_between_cues(fps):
    rate = FRAME_RATES[fps]
    words = speak(NARRATION, cps=18)
    for mode in ("word", "phrase"):
        cues = build_cues(words, mode, _options(fps=fps, extend_to_next=True))
        frames = []
        for cue in cues:
            start, end = Fraction(cue.start) * rate, Fraction(cue.end) * rate
            assert abs(start - round(start)) < 1e-6 and abs(end - round(end)) < 1e-6
            frames.append((round(start), round(end)))
        assert all(b[0] - a[1] >= 2 for a, b in zip(frames, frames[1:]))
        assert all(end > start for start, end in frames)
        assert any(b[0] - a[1] == 2 for a, b in zip(frames, frames[1:]))


def test_ntsc_rates_are_exact_fractions():
    words = [WordTiming("a", 3600.0, 3600.5, None), WordTiming("b", 3601.0, 3601.2, None)]
    (cue, _) = build_cues(words, "word", _options(fps=29.97))
    assert Fraction(cue.start) * Fraction(30000, 1001) == pytest.approx(107892, abs=1e-6)


def test_snapping_keeps_dense_cues_apart():
    words = [WordTiming(str(n), 1.0, 1.0, None) for n in range(4)]  # all at one instant
    cues = build_cues(words, "word", _options(fps=25))
    frames = [(round(c.start * 25), round(c.end * 25)) for c in cues]
    assert all(end > start for start, end in frames)
    assert all(b[0] - a[1] >= 2 for a, b in zip(frames, frames[1:]))


# --- extend_to_next --------------------------------------------------------

def test_extend_to_next_fills_gaps_under_a_second_only():
    words = [WordTiming("One.", 0.0, 1.0, None), WordTiming("Two.", 1.5, 2.5, None),
             WordTiming("Three.", 3.6, 4.5, None)]
    for mode in ("word", "phrase"):
        first, second, _ = build_cues(words, mode, _options(extend_to_next=True, max_words=1))
        assert first.end == 1.5                    # 0.5 s gap: held until "Two."
        assert second.end == 2.5                   # 1.1 s gap: a pause, not filled
        plain = build_cues(words, mode, _options(max_words=1))
        assert plain[0].end == 1.0


def test_the_two_frame_gap_wins_over_extend_to_next():
    words = [WordTiming("One.", 0.0, 1.0, None), WordTiming("Two.", 1.5, 2.5, None)]
    first, second = build_cues(words, "phrase", _options(extend_to_next=True, fps=25,
                                                          max_words=1))
    assert second.start == pytest.approx(38 / 25)      # 1.5 s is frame 37.5: half up
    assert first.end == pytest.approx(36 / 25)          # not 1.5: two frames before


# --- where cues and lines break --------------------------------------------

def test_pauses_of_a_second_are_never_spanned():
    words = speak("one two three four five six", pauses={2: 1.0})
    cues = build_cues(words, "phrase", _options(extend_to_next=True))
    assert [c.words for c in cues] == [(0, 3), (3, 6)]
    assert cues[0].end <= words[3].start_time
    shorter = speak("one two three four five six", pauses={2: 0.9})
    assert len(build_cues(shorter, "phrase")) == 1


def test_cues_break_at_sentence_ends_before_clause_punctuation():
    text = ("The storm came in from the west over the hills, and the boats were pulled "
            "up. Nobody went out that night, nobody at all, until morning came slowly.")
    words = speak(text)
    cues = build_cues(words, "phrase", language="en")
    assert any(_words_of(c, words)[-1] == "up." for c in cues)
    assert all(_words_of(c, words)[-1][-1] in ".," for c in cues)


def test_clause_punctuation_before_plain_breaks():
    text = ("When the lights went out across the whole city, people walked home "
            "together through the dark streets")
    words = speak(text)
    (cue, *_) = build_cues(words, "phrase", language="en")
    assert cue.lines[-1].endswith("city,") and len(cue.lines) == 2


def test_lines_are_balanced():
    text = "committee members finally approved every single budget"
    (cue,) = build_cues(speak(text), "phrase")
    widths = [len(line) for line in cue.lines]
    # A greedy fill would give 40 and 13 characters.
    assert len(widths) == 2 and abs(widths[0] - widths[1]) <= 8, cue.lines


@pytest.mark.parametrize("language, text, binding", [
    ("en", "We walked along the river to the old mill and sat down on a bench in the sun",
     "the to on a in and"),
    ("de", "Wir gingen am Fluss entlang zu der alten Mühle und saßen auf einer Bank in der Sonne",
     "am zu der und auf einer in"),
    ("fr", "Nous avons marché le long de la rivière vers le vieux moulin et la grande forêt",
     "le de la vers et"),
    ("es", "Caminamos por la orilla del río hasta el viejo molino y nos sentamos en un banco",
     "por la del hasta el y en un"),
])
def test_no_line_ends_on_an_article_preposition_or_conjunction(language, text, binding):
    words, binding = speak(text), set(binding.split())
    for limit in range(14, 40, 2):
        cues = build_cues(words, "phrase", _options(max_chars_per_line=limit), language)
        ends = _ends_of_lines(cues, words)
        assert not [end for end in ends if end.lower() in binding], (limit, ends)


def test_the_function_word_rule_is_what_moves_those_breaks():
    words = speak("We walked along the river to the old mill and sat down on a bench in the sun")
    bad = 0
    for limit in (20, 24, 28, 32, 36):
        cues = build_cues(words, "phrase", _options(max_chars_per_line=limit), language="xx")
        bad += sum(binds_forward(end, "en") for end in _ends_of_lines(cues, words))
    assert bad > 0  # without the English list some breaks land after "the", "to", "on"...


def test_function_word_lists_cover_several_languages():
    assert {"en", "de", "fr", "es"} <= set(FUNCTION_WORDS)
    assert binds_forward("The", "en-US") and binds_forward("der", "de")
    assert binds_forward("«", "fr") and binds_forward("Dr.", "en")
    assert not binds_forward("the,", "en") and not binds_forward("boat", "en")
    assert not binds_forward("the", None) and not binds_forward("up", "en")


@pytest.mark.parametrize("language, text", [
    ("fr", "Il a dit : nous partons demain matin , très tôt , avant le lever du jour"),
    ("en", "alpha beta gamma — deltadeltadelta omega and then some more words"),
])
def test_a_lone_punctuation_mark_stays_with_the_word_before_it(language, text):
    words = speak(text, 20)
    for limit in range(12, 25):
        cues = build_cues(words, "phrase", _options(max_chars_per_line=limit), language)
        assert not [line for c in cues for line in c.lines if line[0] in ":,—"], limit


def test_no_word_is_left_alone_in_a_cue_of_its_own():
    words = speak("Everyone in the room stood up and cheered loudly for them.")
    for limit in range(30, 52, 2):
        cues = build_cues(words, "phrase", _options(max_chars_per_line=limit, max_lines=1),
                          "en")
        assert len(cues) > 1 and all(c.words[1] - c.words[0] > 1 for c in cues), limit


def test_the_narration_reads_like_edited_subtitles():
    assert 190 <= len(NARRATION) <= 240
    words = speak(NARRATION)
    cues = build_cues(words, "phrase", language="en")
    _check_invariants(cues, words)
    ends = _ends_of_lines(cues, words)
    assert not [end for end in ends if binds_forward(end, "en")], ends
    assert sum(len(c.lines) == 2 for c in cues) >= len(cues) - 1
    assert all(c.end - c.start <= 7 for c in cues)
    # Every cue ends at punctuation or before a new phrase, none mid-phrase.
    kinds = [cue_module._kind(words[c.words[1] - 1].word, words[c.words[1]].word, "en")
             for c in cues[:-1]]
    assert max(kinds) <= cue_module.PHRASE


# --- word cues ---------------------------------------------------------------

def test_word_cues_ignore_the_phrase_limits():
    long_word = "Supercalifragilisticexpialidocious-and-then-some-more-letters"
    words = [WordTiming(long_word, 0.0, 3.0, None), WordTiming("ok", 3.0, 3.2, None)]
    options = _options(max_duration=1, max_chars_per_line=10, max_words=1, max_cps=5,
                       min_duration=0.5)
    first, second = build_cues(words, "word", options)
    assert (first.start, first.end, first.lines) == (0.0, 3.0, [long_word])
    assert second.end == pytest.approx(3.5)       # min_duration, not 2 chars / 5 cps


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="word, phrase"):
        build_cues([], "sentence")
    assert build_cues([], "phrase") == [] and build_cues([], "word") == []


# --- the search is exact, and total ----------------------------------------

def _brute_layout(text, first, end, lines):
    limit, best = text.options.max_chars_per_line, math.inf
    for cuts in itertools.combinations(range(first + 1, end), lines - 1):
        bounds = (first, *cuts, end)
        if any(b - a > 1 and text.width(a, b) > limit for a, b in zip(bounds, bounds[1:])):
            continue
        widths = [text.width(a, b) for a, b in zip(bounds, bounds[1:])]
        cost = sum(cue_module._LINE_END[text.kinds[c - 1]] for c in cuts)
        best = min(best, cost + cue_module._BALANCE * (max(widths) - min(widths)) / limit)
    return best


def _brute_stretch(text, stretch):
    best = {stretch[0]: 0.0}
    for end in range(stretch[0] + 1, stretch[1] + 1):
        best[end] = min(best[first] + cue_module._cue_cost(text, first, end, stretch)
                        + _brute_layout(text, first, end, lines)
                        for first, lines in cue_module._candidates(text, end, stretch[0]))
    return best[stretch[1]]


def test_the_pruned_search_finds_the_exhaustive_optimum():
    rng = random.Random(7)
    vocab = "a the of and cat sat on mat, window. extraordinarily big 猫 é tiny: x".split()
    for _ in range(150):
        words, now = [], 0.0
        for _ in range(rng.randint(1, 12)):
            length = rng.uniform(0.05, 0.6)
            words.append(WordTiming(rng.choice(vocab), now, now + length, None))
            now += length + rng.choice([0, 0, 0.1, 0.4])
        options = _options(max_chars_per_line=rng.choice([10, 14, 20]),
                           max_lines=rng.choice([1, 2, 3]), max_words=rng.choice([None, 3, 6]))
        text = cue_module._Text(words, options, "en")
        for stretch in cue_module._stretches(text):
            found = sum(cue_module._cue_cost(text, first, end, stretch)
                        + cue_module._layout(text, first, end, len(breaks) + 1)[0]
                        for first, end, breaks in cue_module._cut_stretch(text, stretch))
            assert found == pytest.approx(_brute_stretch(text, stretch))


def test_any_word_list_gets_valid_cues():
    rng = random.Random(3)
    pool = ["a", "the", "x" * 120, "。", "—", ":", "word,", "end.", "猫", "🙂", "«", "»"]
    for _ in range(200):
        words, now = [], 0.0
        for _ in range(rng.randint(0, 30)):
            now += rng.choice([0.0, 0.0, 0.05, 0.3, 1.2])
            length = rng.choice([0.0, 0.1, 0.4, 9.0])
            words.append(WordTiming(rng.choice(pool), now, now + length, None))
        options = _options(fps=rng.choice([None, 24.0, 59.94]),
                           extend_to_next=rng.random() < 0.5, max_lines=rng.choice([1, 3]))
        for mode in ("word", "phrase"):
            cues = build_cues(words, mode, options, rng.choice(["en", "fr", None]))
            assert [i for c in cues for i in range(*c.words)] == list(range(len(words)))
            assert all(c.end >= c.start for c in cues)
            assert all(a.end <= b.start for a, b in zip(cues, cues[1:]))
