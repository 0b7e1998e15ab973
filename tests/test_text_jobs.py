"""Any text, said right, through the handler with the tiny models.

Pauses are exact silences, normalization and pronunciations reach the model
(`spoken_text`), timings list the words as written, and hostile texts (no
punctuation, one enormous word, CJK and Thai without spaces, emoji, mixed
scripts, URLs, numbers) give audio or a clear error, never `internal_error`.
Timings here come from the estimate (`timing_method: google` without
credentials falls through to it at once), which is enough to check the
every-word rule; the aligners are tested on their own.
"""
from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import regex
import soundfile

from tests.test_voices import fetch

RATE = 24000


def timed(worker, text: str, **extra) -> dict:
    job = {"text": text, "seed": 5, "nfe_step": 4, "return_word_timings": True,
           "timing_method": "google", "timing_format": "json", "timing_inline": True,
           **extra}
    return worker(job)


def samples_of(out: dict) -> np.ndarray:
    data, rate = soundfile.read(io.BytesIO(fetch(out["audio_url"])), dtype="int16")
    assert rate == RATE
    return data


def zero_runs(samples: np.ndarray) -> list:
    """(start, length) of every run of exact digital silence, longest first."""
    silent = np.concatenate([[False], samples == 0, [False]])
    edges = np.flatnonzero(np.diff(silent.astype(np.int8)))
    runs = [(int(a), int(b - a)) for a, b in zip(edges[::2], edges[1::2])]
    return sorted(runs, key=lambda run: -run[1])


def assert_every_word_once(out: dict, words: list) -> None:
    assert "error" not in out, out
    timings = out["word_timings"]
    assert [w["word"] for w in timings] == words
    starts = [w["start_time"] for w in timings]
    assert starts == sorted(starts)
    assert all(0 <= w["start_time"] <= w["end_time"] <= out["duration"] + 1e-3
               for w in timings)


# ---- pauses -------------------------------------------------------------------

@pytest.mark.parametrize("tag, seconds", [("[pause:1.5s]", 1.5),
                                          ('<break time="750ms"/>', 0.75),
                                          ('<break strength="x-strong"/>', 1.2)])
def test_a_pause_is_exact_silence_between_the_words_around_it(tts_worker, tag, seconds):
    out = timed(tts_worker, f"The first part ends here. {tag} The second part follows.",
                subtitle_cues="phrase")
    assert_every_word_once(out, "The first part ends here. The second part follows.".split())
    samples = samples_of(out)
    start, length = zero_runs(samples)[0]
    # At least the pause itself, as digital silence (a chunk's own quiet edge may add to it).
    assert length >= int(seconds * RATE) - 1
    before, after = out["word_timings"][4], out["word_timings"][5]   # "here." | "The"
    # The silence lies between the two parts: no word inside it, none across it.
    assert before["end_time"] <= (start + length) / RATE - seconds + 0.01
    assert after["start_time"] >= (start + seconds * RATE) / RATE - 0.01
    assert "[pause:" in out["spoken_text"] and "<break" not in out["spoken_text"]


def test_leading_and_trailing_pauses_are_silence_at_the_edges(tts_worker):
    out = timed(tts_worker, "[pause:1s] Hello there. [pause:500ms]")
    samples = samples_of(out)
    assert not samples[:RATE].any()
    assert not samples[-RATE // 2:].any()
    assert out["word_timings"][0]["start_time"] >= 1.0


def test_a_phrase_cue_never_spans_a_long_pause(tts_worker):
    out = timed(tts_worker, "One two three four. [pause:2s] Five six seven eight.",
                subtitle_cues="phrase")
    import json

    cues = json.loads(fetch(out["timing_url"]))["cues"]
    for cue in cues:
        assert not ("four." in cue["text"] and "Five" in cue["text"]), cue


def test_remove_silence_keeps_pauses_exact(tts_worker):
    out = timed(tts_worker, "Short line. [pause:2s] Another line.", remove_silence=True)
    assert zero_runs(samples_of(out))[0][1] >= 2 * RATE - 1


@pytest.mark.parametrize("text, fragment", [
    ("Wait [pause:abc] here.", "[pause:abc]"),
    ("Wait [pause:20s] here.", "[pause:20s]"),
    ('Wait <break time="5 years"/> here.', "<break"),
    ("Wait [pause:1s here.", "[pause:1s"),
])
def test_a_malformed_or_out_of_range_tag_is_invalid_input_naming_it(tts_worker, text,
                                                                     fragment):
    out = tts_worker({"text": text, "nfe_step": 4})
    assert out["error"].startswith("invalid_input: text"), out
    assert fragment in out["error"]


@pytest.mark.parametrize("text", ["?!... --- !!!", "\x00\x01\x07\x1b", "🎉🎉🎉 🚀✨",
                                  "[pause:1s] [pause:2s]", "   \u200b\u200b   "])
def test_a_text_with_nothing_to_say_is_invalid_input(tts_worker, text):
    out = tts_worker({"text": text, "nfe_step": 4})
    assert out["error"].startswith("invalid_input: text"), out


# ---- what is said -----------------------------------------------------------------

def test_numbers_and_symbols_are_said_as_words_and_timed_as_written(tts_worker):
    text = "It costs $45 at 10:30 on 3/4/2025, about 5 km from Dr. Smith."
    out = timed(tts_worker, text)
    assert_every_word_once(out, text.split())
    spoken = out["spoken_text"].lower()
    for said in ("forty-five dollars", "ten thirty", "march fourth", "kilometers", "doctor"):
        assert said in spoken, (said, spoken)
    plain = timed(tts_worker, text, normalize=False)
    assert "$45" in plain["spoken_text"]


def test_pronunciations_of_the_voice_and_of_the_request(tts_worker, reference_wav):
    voice = tts_worker({"action": "upload", "voice_name": "speaker",
                        "voice_base64": base64.b64encode(reference_wav).decode(),
                        "ref_text": "Some call me nature, others call me mother nature.",
                        "pronunciations": {"Nguyen": "Win", "Siobhan": "Shivawn"}})
    assert "error" not in voice, voice
    out = timed(tts_worker, "Nguyen met Siobhan.", voice="speaker",
                pronunciations={"Siobhan": "Shiv on"})
    assert out["spoken_text"] == "Win met Shiv on."
    assert [w["word"] for w in out["word_timings"]] == ["Nguyen", "met", "Siobhan."]


@pytest.mark.parametrize("text, language", [
    ("今日はいい天気ですね。", "ja"), ("오늘은 날씨가 좋네요.", "ko"),
    ("Сегодня хорошая погода.", "ru"), ("วันนี้อากาศดีมาก", "th"),
    ("今天天气很好。", "zh"), ("The weather is fine today.", "en"),
])
def test_the_language_is_detected_by_script(tts_worker, text, language):
    out = timed(tts_worker, text)
    assert out["language"] == language, out


# ---- hostile texts ------------------------------------------------------------------

def graphemes(text: str) -> list:
    return regex.findall(r"\X", text)


HOSTILE = {
    "one 300-character word": ("Supercalifragilistic" * 15 + " ends here", None),
    "CJK without punctuation": ("我们今天去公园散步然后回家吃饭" * 40, "chars"),
    "Thai without spaces": ("สวัสดีครับวันนี้อากาศดีมาก" * 10, "graphemes"),
    "emoji among words": ("Great news 🎉🎉 everyone ✨ see you 🚀 soon", None),
    "mixed scripts": ("Hello 世界 and привет and مرحبا and γεια and नमस्ते", "mixed"),
    "URLs": ("Visit https://example.com/path?x=1&y=2 or mail team@example.org today", None),
    "all numbers": (" ".join(str(n * 7919) for n in range(60)), None),
}


def expected_words(text: str, rule) -> list:
    if rule == "chars":
        return list(text)
    if rule == "graphemes":
        return graphemes(text)
    if rule == "mixed":
        return [unit for token in text.split()
                for unit in (list(token) if token == "世界" else [token])]
    return text.split()


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_text_gives_audio_and_every_word_once(tts_worker, name):
    text, rule = HOSTILE[name]
    out = timed(tts_worker, text)
    assert_every_word_once(out, expected_words(text, rule))
    assert out["duration"] > 0.5


def test_5000_characters_without_punctuation(tts_worker):
    words = [f"word{'abcdefghij'[n % 10]}{'klmnopqrst'[n // 10 % 10]}" for n in range(900)]
    text = " ".join(words)[:5000].rsplit(" ", 1)[0]
    out = timed(tts_worker, text, nfe_step=4)
    assert_every_word_once(out, text.split())
    # Cut into chunks the model can take: no single chunk of the whole text.
    assert out["duration"] > 60


def test_loudness_of_a_tts_job_measured_by_ffmpeg(tts_worker, tmp_path):
    import re
    import subprocess

    out = tts_worker({"text": "A line read loud enough for a podcast, and no louder.",
                      "seed": 2, "nfe_step": 4, "loudness": -14.0})
    path = tmp_path / "loud.wav"
    path.write_bytes(fetch(out["audio_url"]))
    meter = subprocess.run(["ffmpeg", "-nostats", "-i", str(path), "-af", "ebur128=peak=true",
                            "-f", "null", "-"], capture_output=True, text=True, check=True)
    summary = meter.stderr[meter.stderr.rindex("Summary:"):]
    assert abs(float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1)) + 14.0) <= 1.0
    assert float(re.search(r"Peak:\s+(-?[\d.]+) dBFS", summary).group(1)) <= -1.0
