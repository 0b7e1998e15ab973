"""The fallback aligner and long audio in pieces, on espeak-ng speech with exact word times.

Words said one at a time (joined with known pauses) must be timed within
100 ms on average in every voice, rate and pitch; running speech, whose word
starts libespeak-ng reports, no worse than the first estimate
(``spans.baseline_estimate``). The texts here are not the ones the
aligner's weights were chosen on. Nothing is mocked.
"""
from __future__ import annotations

import numpy as np
import pytest

from settings import load_settings
from tests import espeak_speech
from tests.tiny_align import tone_speech
from worker.text.words import split_words
from worker.timing.backend import chunk_groups
from worker.timing.chain import compute_word_timings
from worker.timing.fallback import align_lengths, estimate, phrase_end, running_speech
from worker.timing.landmarks import find_landmarks
from worker.timing.lengths import spoken_length
from worker.timing.pieces import as_chunks, pieces
from worker.timing.spans import baseline_estimate, finalize

RATE = espeak_speech.RATE
needs_cli = pytest.mark.skipif(not espeak_speech.have_espeak_cli(), reason="espeak-ng missing")
needs_lib = pytest.mark.skipif(not espeak_speech.have_libespeak(), reason="libespeak-ng missing")

TEXTS = {
    "en": ("Early on Monday the baker opened his small shop near the station. Fresh bread, "
           "warm rolls and sweet pastries filled the window, and a long line of hungry "
           "travellers waited patiently outside in the cold morning air."),
    "de": ("Am frühen Montag öffnete der Bäcker seinen kleinen Laden am Bahnhof. Frisches "
           "Brot, warme Brötchen und süßes Gebäck füllten das Schaufenster, und draußen "
           "warteten viele hungrige Reisende in der kalten Morgenluft."),
    "fr": ("Tôt le lundi matin, le boulanger ouvrit sa petite boutique près de la gare. Le "
           "pain frais, les croissants chauds et les gâteaux sucrés remplissaient la vitrine, "
           "et une longue file de voyageurs attendait dehors dans le froid."),
    "es": ("El lunes temprano el panadero abrió su pequeña tienda cerca de la estación. El "
           "pan fresco, los bollos calientes y los pasteles dulces llenaban el escaparate, y "
           "una larga fila de viajeros esperaba afuera en el frío de la mañana."),
    "cmn": ("今天早上面包师打开了车站旁边的小店。"
            "新鲜的面包和甜点摆满了橱窗，很多旅客在寒冷的空气里耐心等待。"),
}
# voice, words per minute, pitch: espeak-ng's voices and variants, slow to fast, low to high
VOICES = [("en", 175, 50), ("en-us", 130, 40), ("de", 200, 60), ("fr", 220, 50),
          ("en+f3", 160, 70), ("en+m7", 190, 30), ("es", 150, 55), ("de+klatt", 170, 50),
          ("en-gb-x-rp", 210, 45)]


def language(voice: str) -> str:
    return {"cmn": "zh"}.get(voice.split("+")[0].split("-")[0], voice.split("+")[0][:2])


def whole(speech) -> list:
    return [(0, len(speech.words), 0.0, speech.audio.size / speech.rate)]


def boundary_errors(spans, speech) -> np.ndarray:
    """Seconds between each known word start and end and where ``spans`` put it."""
    errors = []
    for (start, end, _), true_start, true_end in zip(spans, speech.starts, speech.ends):
        errors += [abs(start - true_start)] if true_start is not None else []
        errors += [abs(end - true_end)] if true_end is not None else []
    return np.array(errors)


def both_errors(speech, voice: str) -> tuple:
    ours = estimate(speech.words, speech.audio, speech.rate, whole(speech), language(voice))
    baseline = baseline_estimate(speech.words, speech.audio, speech.rate, whole(speech))
    return boundary_errors(ours, speech), boundary_errors(baseline, speech)


def report(ours: np.ndarray, baseline: np.ndarray) -> str:
    return (f"ours {ours.mean() * 1000:.0f} ms ({np.mean(ours <= 0.1):.0%} within 100 ms), "
            f"baseline {baseline.mean() * 1000:.0f} ms ({np.mean(baseline <= 0.1):.0%})")


# ---- words said one at a time ----------------------------------------------------------

@needs_cli
@pytest.mark.parametrize("voice, wpm, pitch", VOICES)
def test_pause_separated_words_within_100ms(voice, wpm, pitch):
    text = TEXTS[voice.split("+")[0].split("-")[0]]
    speech = espeak_speech.separated(split_words(text), voice, wpm, pitch, seed=wpm)
    ours, baseline = both_errors(speech, voice)
    assert ours.mean() < 0.1 and np.mean(ours <= 0.1) >= 0.9, report(ours, baseline)
    assert ours.mean() < baseline.mean(), report(ours, baseline)


@needs_cli
@pytest.mark.parametrize("voice, noise_db", [("en+f2", -55.0), ("de", -50.0)])
def test_pause_separated_words_over_noise(voice, noise_db):
    text = TEXTS[voice.split("+")[0]]
    speech = espeak_speech.separated(split_words(text), voice, 165, 50, seed=7,
                                     noise_db=noise_db)
    ours, baseline = both_errors(speech, voice)
    assert ours.mean() < 0.1, report(ours, baseline)


@needs_cli
def test_chinese_characters_said_one_at_a_time():
    words = split_words(TEXTS["cmn"])
    speech = espeak_speech.separated(words, "cmn", 160, 50, seed=3)
    ours, baseline = both_errors(speech, "cmn")
    assert len(words) == len(speech.starts) > 30
    assert ours.mean() < 0.1, report(ours, baseline)


# ---- running speech -------------------------------------------------------------------

@pytest.fixture(scope="module")
def running():
    """Errors (ours, baseline) per voice on running speech."""
    if not espeak_speech.have_libespeak():
        pytest.skip("libespeak-ng missing")
    out = {}
    for voice, wpm, pitch in VOICES + [("cmn", 170, 50)]:
        text = TEXTS[voice.split("+")[0].split("-")[0]]
        out[voice] = both_errors(espeak_speech.continuous(text, voice, wpm, pitch), voice)
    return out


@pytest.mark.parametrize("voice", [voice for voice, _, _ in VOICES] + ["cmn"])
def test_running_speech_no_worse_than_the_baseline(running, voice):
    ours, baseline = running[voice]
    # Per voice a text of 35 words is a small sample: a tenth of slack.
    assert ours.mean() <= 1.1 * baseline.mean(), report(ours, baseline)


def test_running_speech_better_than_the_baseline_over_all_voices(running):
    ours = np.concatenate([pair[0] for pair in running.values()])
    baseline = np.concatenate([pair[1] for pair in running.values()])
    assert ours.mean() < baseline.mean(), report(ours, baseline)
    assert np.mean(ours <= 0.1) > np.mean(baseline <= 0.1), report(ours, baseline)


# ---- every word, whatever the audio ----------------------------------------------------

GUARANTEE_TEXTS = [
    "In 2024 we sold 3,500 units at $4.99 each.",
    "A & B — 50% off @ shop #1 (really) + more...",
    "— ... !!",
    "你好，世界！今天是2024年，天气很好。",
    "Crème brûlée, naïve café; Straße über Ærø.",
]


def _audios(words):
    bursts = tone_speech([0.2] * len(words), [0.15] * len(words))[0]
    rng = np.random.default_rng(1)
    return {"speech": bursts, "silence": np.zeros(RATE, np.float32),
            "noise": (0.1 * rng.standard_normal(RATE)).astype(np.float32),
            "too short for the words": bursts[:RATE // 5],
            "one sample": np.full(1, 0.5, np.float32)}


@pytest.mark.parametrize("text", GUARANTEE_TEXTS)
def test_every_word_once_in_order_inside_the_audio(text):
    words = split_words(text)
    for name, audio in _audios(words).items():
        duration = audio.size / RATE
        spans = estimate(words, audio, RATE, [(0, len(words), 0.0, duration)], "en")
        assert len(spans) == len(words), name
        timed = finalize(words, spans, duration)
        assert [w.word for w in timed] == words, name
        assert all(0.0 <= w.start_time <= w.end_time <= duration for w in timed), name
        assert all(a.start_time <= b.start_time for a, b in zip(timed, timed[1:])), name
        assert all(w.confidence is None for w in timed), name


def test_a_few_words_in_long_audio():
    # Two minutes of bursts of noise for three words: far more places than words.
    rng = np.random.default_rng(2)
    seconds = np.arange(120 * RATE) / RATE
    audio = (0.1 * rng.standard_normal(seconds.size) * (np.sin(seconds * 3) > 0)).astype(
        np.float32)
    words = ["a", "few", "words"]
    spans = estimate(words, audio, RATE, [(0, 3, 0.0, 120.0)], "en")
    assert len(spans) == 3
    assert all(0.0 <= start <= end <= 120.0 for start, end, _ in spans)
    assert spans[0][1] <= spans[1][0] and spans[1][1] <= spans[2][0]


def test_symbol_words_sit_between_their_neighbours():
    words = ["alpha", "&", "beta", "—", "gamma"]
    audio, bursts = tone_speech([0.4, 0.0, 0.4, 0.0, 0.4], [0.3, 0.0, 0.3, 0.0, 0.3])
    spans = estimate(words, audio, RATE, [(0, 5, 0.0, audio.size / RATE)], "en")
    assert spans[1][0] == spans[1][1] == spans[0][1]
    assert spans[3][0] == spans[3][1] == spans[2][1]
    for (start, end, _), (true_start, true_end) in zip(spans[::2], [bursts[0], bursts[2],
                                                                      bursts[4]]):
        assert abs(start - true_start) < 0.03 and abs(end - true_end) < 0.03


def test_groups_are_aligned_each_in_its_own_stretch():
    words = ["one", "two", "three", "four"]
    audio, bursts = tone_speech([0.3] * 4, [0.4] * 4)
    middle = (bursts[1][1] + bursts[2][0]) / 2
    groups = [(0, 2, 0.0, middle), (2, 4, middle, audio.size / RATE)]
    spans = estimate(words, audio, RATE, groups, "en")
    for (start, end, _), (true_start, true_end) in zip(spans, bursts):
        assert abs(start - true_start) < 0.03 and abs(end - true_end) < 0.03


def test_unfit_words_fall_back_to_the_spread():
    # More words than 30 ms places in the audio: the alignment cannot fit them.
    words = ["word"] * 80
    audio, _ = tone_speech([0.5], [0.1])
    marks = find_landmarks(audio, RATE)
    assert align_lengths([1.0] * 80, marks) is None
    spans = estimate(words, audio, RATE, [(0, 80, 0.0, audio.size / RATE)], "en")
    assert spans == baseline_estimate(words, audio, RATE, [(0, 80, 0.0, audio.size / RATE)])


def test_the_chain_uses_the_fallback_aligner():
    words = ["Only", "the", "fallback", "here."]
    audio, bursts = tone_speech([0.25, 0.15, 0.45, 0.3], [0.12] * 4)
    result = compute_word_timings(" ".join(words), audio, RATE, [], "en", "google",
                                  load_settings({}))
    assert result.method == "estimate"
    for word, (start, end) in zip(result.words, bursts):
        assert abs(word.start_time - start) < 0.03 and abs(word.end_time - end) < 0.03


# ---- expected lengths and the style of speech ------------------------------------------

def test_spoken_lengths():
    assert spoken_length("&") == spoken_length("—") == spoken_length("...") == 0.0
    assert spoken_length("2024") > spoken_length("two") > 0
    assert spoken_length("strength") > spoken_length("set") > spoken_length("a")
    assert spoken_length("time", "en") < spoken_length("time", "de")  # the silent e
    assert spoken_length("你") > 0 and spoken_length("한국어") > spoken_length("한")
    assert spoken_length("हिन्दी", "hi") > 0 and spoken_length("مرحبا", "ar") > 0


def test_phrase_ends():
    assert all(map(phrase_end, ["end.", "so,", "why?", "(quoted.)", "\u201cyes!\u201d", "好。"]))
    assert not any(map(phrase_end, ["word", "it's", "3.5", "\u2014", ""]))


def test_the_style_of_speech_is_read_from_its_pauses():
    one_at_a_time, _ = tone_speech([0.3] * 10, [0.2] * 10)
    running, _ = tone_speech([3.0], [0.2])
    assert running_speech(find_landmarks(one_at_a_time, RATE), 10) == 0.0
    assert running_speech(find_landmarks(running, RATE), 10) == 1.0


# ---- long audio in pieces --------------------------------------------------------------

def test_pieces_cut_at_silences_and_hold_every_word():
    count = 120
    audio, bursts = tone_speech([0.3 + 0.1 * (n % 4) for n in range(count)],
                                [0.2 + 0.3 * (n % 7 == 0) for n in range(count)])
    words = [f"w{n}" for n in range(count)]
    groups = pieces(words, audio, RATE, max_seconds=10.0)
    assert [n for first, end, _, _ in groups for n in range(first, end)] == list(range(count))
    assert all(0 < stop - start <= 10.0 for _, _, start, stop in groups)
    for (_, end, _, stop), (first, _, start, _) in zip(groups, groups[1:]):
        assert stop == start
        assert bursts[end - 1][1] <= stop <= bursts[first][0]  # in the silence between


def test_pieces_become_chunks_the_chain_takes():
    for text in (TEXTS["en"], TEXTS["cmn"], "我喜欢Python和AI。 Mixed text, «quoted» too."):
        words = split_words(text)
        audio, _ = tone_speech([0.25] * len(words), [0.15] * len(words))
        groups = pieces(words, audio, RATE, max_seconds=4.0)
        chunks = as_chunks(words, groups)
        assert chunk_groups(words, chunks, audio.size / RATE) == groups
        result = compute_word_timings(text, audio, RATE, chunks, "en", "google",
                                      load_settings({}))
        assert [w.word for w in result.words] == words


def test_pieces_of_nothing():
    assert pieces([], np.zeros(RATE, np.float32), RATE) == []
    with pytest.raises(ValueError, match="max_seconds"):
        pieces(["a"], np.zeros(RATE, np.float32), RATE, max_seconds=0.0)


@pytest.fixture(scope="module")
def half_hour():
    if not espeak_speech.have_libespeak():
        pytest.skip("libespeak-ng missing")
    return espeak_speech.long_speech(30 * 60, "en+m3", 165, 45, seed=3)


def _misplaced(groups, speech) -> int:
    """Words whose true start lies outside the piece they were given."""
    return sum(1 for first, end, start, stop in groups for n in range(first, end)
               if speech.starts[n] is not None and not start - 0.05 <= speech.starts[n] <= stop)


def test_half_an_hour_in_pieces_does_not_drift(half_hour):
    speech = half_hour
    groups = pieces(speech.words, speech.audio, speech.rate, 30.0, "en")
    assert all(stop - start <= 30.0 for _, _, start, stop in groups)
    assert [n for a, b, _, _ in groups for n in range(a, b)] == list(range(len(speech.words)))
    assert _misplaced(groups, speech) <= 0.005 * len(speech.words)
    # The same cuts with words shared out by their letters drift far: the check has teeth.
    letters = np.cumsum([len(word) + 1 for word in speech.words])
    total, duration = letters[-1], speech.audio.size / speech.rate
    owners = np.searchsorted([stop for *_, stop in groups], letters / total * duration * 0.999)
    naive = [(int(np.flatnonzero(owners == n)[0]), int(np.flatnonzero(owners == n)[-1]) + 1,
              start, stop) for n, (_, _, start, stop) in enumerate(groups) if (owners == n).any()]
    assert _misplaced(naive, speech) > 0.02 * len(speech.words)

    spans = estimate(speech.words, speech.audio, speech.rate, groups, "en")
    starts = np.array([np.nan if s is None else s for s in speech.starts])
    errors = np.abs(np.array([span[0] for span in spans]) - starts)
    first = errors[starts < 180.0]
    last = errors[starts > np.nanmax(starts) - 60.0]
    assert np.nanmean(last) <= 1.25 * np.nanmean(first), (np.nanmean(first), np.nanmean(last))
    assert np.nanmean(errors) < 0.1
