"""Word timing: WhisperX alignment, the Google Speech path, the estimate, the chain.

WhisperX runs for real on the CPU (a tiny random wav2vec2 folder, and a
made-up acoustic model with known emissions); Google's real client talks gRPC
to a local server. Nothing is downloaded.
"""
from __future__ import annotations

import sys
from importlib.resources import files

import grpc
import numpy as np
import pytest

from settings import load_settings
from tests.tiny_align import (
    Abort,
    SpeechServer,
    ToneCTC,
    authorized_user_json,
    build_align_model,
    build_punkt,
    tone_recognizer,
    tone_speech,
    use_nltk_data,
)
from timing_formats import FORMATS, render
from worker.text.language import detect_language
from worker.text.words import join_words, split_words
from worker.timing import whisperx_backend
from worker.timing.chain import ChunkSpan, available_methods, compute_word_timings

RATE = 24000
REF_TEXT = "Some call me nature, others call me mother nature."


# ---- fixtures -------------------------------------------------------------------

@pytest.fixture(scope="session")
def align_model(tmp_path_factory):
    return str(build_align_model(tmp_path_factory.mktemp("wav2vec2-tiny")))


@pytest.fixture(scope="session")
def punkt_root(tmp_path_factory):
    return build_punkt(tmp_path_factory.mktemp("nltk_data"))


@pytest.fixture(autouse=True)
def nltk_data(punkt_root, monkeypatch):
    use_nltk_data(punkt_root, monkeypatch)


@pytest.fixture
def tone_aligner(monkeypatch):
    """Put a ToneCTC for ``words`` where the aligner for ALIGN_MODEL=tone-ctc is kept."""
    def install(words, language="en"):
        monkeypatch.setitem(whisperx_backend._ALIGNERS, (language, "tone-ctc", "cpu"),
                            (ToneCTC(words), ToneCTC.metadata(language)))
        return load_settings({"ALIGN_MODEL": "tone-ctc", "DEVICE": "cpu"})
    return install


def google_settings(server, **extra):
    env = {"DEVICE": "cpu", "GOOGLE_SPEECH_ENDPOINT": server.endpoint,
           "GOOGLE_CREDENTIALS_JSON": authorized_user_json(), **extra}
    return load_settings(env)


def speech_for(words, gap=0.25):
    """Tone speech with one burst per word, longer for longer words."""
    return tone_speech([0.18 + 0.035 * len(word) for word in words], [gap] * len(words))


def chunk_spans(words, bursts, audio, cuts):
    """ChunkSpans splitting ``words`` before each index in ``cuts``, with
    boundaries in the silences between bursts."""
    edges = [0.0] + [(bursts[c - 1][1] + bursts[c][0]) / 2 for c in cuts] + [len(audio) / RATE]
    bounds = [0, *cuts, len(words)]
    return [ChunkSpan(join_words(words[a:b]), edges[n], edges[n + 1])
            for n, (a, b) in enumerate(zip(bounds, bounds[1:]))]


def assert_every_word(result, text, duration):
    words = result.words
    assert [w.word for w in words] == split_words(text)
    assert all(0.0 <= w.start_time <= w.end_time <= duration for w in words)
    assert all(a.start_time <= b.start_time for a, b in zip(words, words[1:]))
    assert all(w.confidence is None or 0.0 <= w.confidence <= 1.0 for w in words)
    for fmt in FORMATS:  # and the writers take whatever the methods produce
        assert render(fmt, words, job_id="j", method=result.method, language="en")


def assert_near(words, bursts, tolerance):
    for word, (start, end) in zip(words, bursts):
        assert abs(word.start_time - start) <= tolerance, (word, start, end)
        assert abs(word.end_time - end) <= tolerance, (word, start, end)


# ---- words and language -----------------------------------------------------------

@pytest.mark.parametrize("text, words", [
    ("Hello,  world!\nIt's 3:00 — ok?", ["Hello,", "world!", "It's", "3:00", "—", "ok?"]),
    ("你好，世界！今天是2024年。", ["你", "好，", "世", "界！", "今", "天", "是", "2024", "年。"]),
    ("「你好」他说。", ["「你", "好」", "他", "说。"]),
    ("我喜欢Python和AI。", ["我", "喜", "欢", "Python", "和", "AI。"]),
    ("안녕하세요 세계", ["안녕하세요", "세계"]),
    ("Crème brûlée, déjà vu.", ["Crème", "brûlée,", "déjà", "vu."]),
])
def test_split_words(text, words):
    assert split_words(text) == words


def test_detect_language():
    assert detect_language("今天天气很好，我们去公园吧。") == "zh"
    assert detect_language("我喜欢Python和AI") == "zh"
    assert detect_language("The word for 'mountain' is 山.") == "en"
    assert detect_language("Crème brûlée") == "en"


# ---- WhisperX ----------------------------------------------------------------------

def test_whisperx_aligns_real_speech_on_cpu(align_model, monkeypatch):
    import soundfile as sf
    import whisperx

    audio, rate = sf.read(str(files("f5_tts").joinpath("infer/examples/basic/basic_ref_en.wav")),
                          dtype="float32")
    loads = []
    real_load = whisperx.load_align_model
    monkeypatch.setattr(whisperx, "load_align_model",
                        lambda *a, **k: loads.append(a) or real_load(*a, **k))
    settings = load_settings({"ALIGN_MODEL": align_model, "DEVICE": "cpu"})
    monkeypatch.delitem(whisperx_backend._ALIGNERS, ("en", align_model, "cpu"), raising=False)
    chunks = [ChunkSpan(REF_TEXT, 0.0, len(audio) / rate)]
    for _ in range(2):
        result = compute_word_timings(REF_TEXT, audio, rate, chunks, "en", "whisperx", settings)
        assert (result.method, result.fallback_reason, result.language) == ("whisperx", None, "en")
        assert_every_word(result, REF_TEXT, len(audio) / rate)
        assert all(w.confidence is not None for w in result.words)
    assert loads == [("en", "cpu")]  # loaded once, then kept


def test_whisperx_places_words_where_they_sound(tone_aligner):
    words = "Hello there, general Kenobi. You are a bold one!".split()
    audio, bursts = speech_for(words)
    settings = tone_aligner(words)
    result = compute_word_timings(" ".join(words), audio, RATE, [], "en", "whisperx", settings)
    assert result.method == "whisperx"
    assert_near(result.words, bursts, 0.08)


def test_whisperx_aligns_each_chunk_at_its_offset(tone_aligner):
    words = "One chunk here. Another chunk there! And a third one follows.".split()
    audio, bursts = speech_for(words)
    chunks = chunk_spans(words, bursts, audio, [3, 6])
    result = compute_word_timings(" ".join(words), audio, RATE, chunks, "en", "whisperx",
                                  tone_aligner(words))
    assert result.method == "whisperx"
    assert_near(result.words, bursts, 0.08)
    for chunk, first, end in [(chunks[0], 0, 3), (chunks[1], 3, 6), (chunks[2], 6, 11)]:
        assert all(chunk.start <= w.start_time <= w.end_time <= chunk.end
                   for w in result.words[first:end])


def test_whisperx_aligns_the_whole_text_when_chunks_do_not_match(tone_aligner, caplog):
    words = "Chunks that were rewritten still align fine.".split()
    audio, bursts = speech_for(words)
    chunks = [ChunkSpan("Chunks that were", 0.0, bursts[2][1] + 0.1),
              ChunkSpan("re-written, still align fine.", bursts[2][1] + 0.1, len(audio) / RATE)]
    result = compute_word_timings(" ".join(words), audio, RATE, chunks, "en", "whisperx",
                                  tone_aligner(words))
    assert result.method == "whisperx"
    assert_near(result.words, bursts, 0.08)
    assert "one piece" in caplog.text


# ---- Google -------------------------------------------------------------------------

def test_google_maps_a_different_transcript_onto_the_text():
    text = "I have 3 cats, and the the dogs — 2 of them."
    words = split_words(text)
    # What a recognizer says: numbers spelled out, the dash unheard, one "the" lost.
    heard = ["i", "have", "three", "cats", "and", "the", "", "dogs", "", "two", "of", "them"]
    audio, bursts = speech_for(words)
    with SpeechServer(tone_recognizer(heard)) as server:
        result = compute_word_timings(text, audio, RATE, [], "en", "google",
                                      google_settings(server))
    assert (result.method, result.fallback_reason) == ("google", None)
    assert_every_word(result, text, len(audio) / RATE)
    timed = [w for w, h in zip(result.words, heard) if h]
    assert_near(timed, [b for b, h in zip(bursts, heard) if h], 0.05)
    by_word = dict(enumerate(result.words))
    assert by_word[0].confidence == pytest.approx(0.8)
    assert by_word[2].confidence is None and by_word[9].confidence is None  # "3", "2"
    assert by_word[6].confidence is None and by_word[8].confidence is None  # unheard
    assert by_word[5].end_time <= by_word[6].start_time <= by_word[7].start_time
    (request,) = server.requests
    config = request.config
    assert config.enable_word_time_offsets and config.sample_rate_hertz == 16000
    assert config.encoding.name == "LINEAR16" and config.language_code == "en-US"
    assert abs(len(request.audio.content) / 2 - len(audio) * 16000 / RATE) <= 1


@pytest.mark.parametrize("with_chunks", [True, False])
def test_google_cuts_long_audio_under_a_minute(with_chunks):
    words = [f"word{n}" for n in range(14)]
    audio, bursts = tone_speech([0.4] * 14, [4.6] * 14)
    assert len(audio) / RATE > 65
    chunks = chunk_spans(words, bursts, audio, [5, 10]) if with_chunks else []
    with SpeechServer(tone_recognizer(words)) as server:
        result = compute_word_timings(" ".join(words), audio, RATE, chunks, "en", "google",
                                      google_settings(server))
    assert result.method == "google"
    assert len(server.requests) >= 2
    assert all(len(r.audio.content) / 2 / 16000 < 60 for r in server.requests)
    assert_near(result.words, bursts, 0.05)  # every piece's offset added back


def test_google_reads_a_credentials_file(tmp_path):
    path = tmp_path / "credentials.json"
    path.write_text(authorized_user_json())
    words = ["Hello", "again"]
    audio, _ = speech_for(words)
    with SpeechServer(tone_recognizer(words)) as server:
        settings = load_settings({"GOOGLE_SPEECH_ENDPOINT": server.endpoint,
                                  "GOOGLE_APPLICATION_CREDENTIALS": str(path)})
        result = compute_word_timings("Hello again", audio, RATE, [], "en", "google", settings)
    assert result.method == "google"


def test_google_retries_a_transient_error():
    words = ["Second", "try"]
    audio, bursts = speech_for(words)
    answers = [Abort(grpc.StatusCode.UNAVAILABLE, "try again"), tone_recognizer(words)]
    with SpeechServer(lambda request: answers.pop(0) if len(answers) > 1
                      else answers[0](request)) as server:
        result = compute_word_timings("Second try", audio, RATE, [], "en", "google",
                                      google_settings(server))
    assert (result.method, len(server.requests)) == ("google", 2)
    assert_near(result.words, bursts, 0.05)


def test_google_empty_result_falls_back_to_estimate():
    audio, bursts = speech_for(["Nothing", "heard"])
    with SpeechServer(tone_recognizer([])) as server:
        result = compute_word_timings("Nothing heard", audio, RATE, [], "en", "google",
                                      google_settings(server))
    assert result.method == "estimate"
    assert result.fallback_reason == "google returned no timed words"
    assert len(server.requests) == 1
    assert_near(result.words, bursts, 0.1)


def test_google_error_status_falls_back_to_estimate():
    audio, _ = speech_for(["Refused", "request"])
    with SpeechServer(lambda request: Abort(grpc.StatusCode.INVALID_ARGUMENT,
                                            "audio is not what we expected")) as server:
        result = compute_word_timings("Refused request", audio, RATE, [], "en", "google",
                                      google_settings(server))
    assert result.method == "estimate"
    assert result.fallback_reason.startswith("google failed: InvalidArgument")
    assert "audio is not what we expected" in result.fallback_reason


def test_google_bad_credentials_fall_back_with_a_reason():
    audio, _ = speech_for(["Bad", "keys"])
    with SpeechServer(tone_recognizer(["bad", "keys"])) as server:
        result = compute_word_timings("Bad keys", audio, RATE, [], "en", "google",
                                      google_settings(server, GOOGLE_CREDENTIALS_JSON="{oops"))
    assert result.method == "estimate" and not server.requests
    assert "GOOGLE_CREDENTIALS_JSON is not valid JSON" in result.fallback_reason


# ---- the fallback chain ---------------------------------------------------------------

@pytest.mark.parametrize("method", ["whisperx", "auto"])
def test_whisperx_not_importable_falls_back_to_google(method, monkeypatch):
    monkeypatch.setitem(sys.modules, "whisperx", None)
    words = ["Fallback", "works"]
    audio, bursts = speech_for(words)
    with SpeechServer(tone_recognizer(words)) as server:
        result = compute_word_timings("Fallback works", audio, RATE, [], "en", method,
                                      google_settings(server))
    assert result.method == "google"
    assert result.fallback_reason.startswith("whisperx unavailable: whisperx cannot be imported")
    assert_near(result.words, bursts, 0.05)


def test_whisperx_failing_falls_back_to_google(tmp_path):
    broken = tmp_path / "broken-aligner"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    words = ["Broken", "aligner"]
    audio, _ = speech_for(words)
    with SpeechServer(tone_recognizer(words)) as server:
        unknown = compute_word_timings("Broken aligner", audio, RATE, [], "xx", "whisperx",
                                       google_settings(server))
        bad = compute_word_timings("Broken aligner", audio, RATE, [], "en", "whisperx",
                                   google_settings(server, ALIGN_MODEL=str(broken)))
    assert unknown.method == "google" and bad.method == "google"
    assert unknown.fallback_reason == ("whisperx failed: ValueError: "
                                       "No default align-model for language: xx")
    assert bad.fallback_reason.startswith("whisperx failed: ")
    assert server.requests[0].config.language_code == "xx"


def test_nothing_available_falls_back_to_estimate(monkeypatch):
    monkeypatch.setitem(sys.modules, "whisperx", None)
    words = ["Only", "an", "estimate", "here."]
    audio, bursts = speech_for(words, gap=0.6)
    settings = load_settings({"DEVICE": "cpu"})
    result = compute_word_timings("Only an estimate here.", audio, RATE, [], "en", "auto",
                                  settings)
    assert result.method == "estimate"
    assert result.fallback_reason.startswith("whisperx unavailable: ")
    assert result.fallback_reason.endswith(
        "; google unavailable: no credentials (set GOOGLE_APPLICATION_CREDENTIALS or "
        "GOOGLE_CREDENTIALS_JSON)")
    assert all(w.confidence is None for w in result.words)
    assert_near(result.words, bursts, 0.1)  # each word in its own burst of sound


def test_available_methods(monkeypatch):
    with_keys = load_settings({"GOOGLE_CREDENTIALS_JSON": authorized_user_json()})
    assert available_methods(with_keys) == ["whisperx", "google", "estimate"]
    assert available_methods(load_settings({})) == ["whisperx", "estimate"]
    monkeypatch.setitem(sys.modules, "whisperx", None)
    assert available_methods(load_settings({})) == ["estimate"]


def test_text_without_words_has_no_timings():
    result = compute_word_timings(" \n ", np.zeros(2400, np.float32), RATE, [], "en",
                                  "whisperx", load_settings({}))
    assert (result.words, result.method) == ([], "estimate")


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="whisperx, google, auto"):
        compute_word_timings("x", np.zeros(100, np.float32), RATE, [], "en", "fast",
                             load_settings({}))


# ---- the every-word guarantee, for every method ------------------------------------------

TEXTS = {
    "digits": "In 2024 we sold 3,500 units at $4.99 each.",
    "symbols": "A & B — 50% off @ shop #1 (really) + more...",
    "repeats": "the cat the cat the the cat sat sat.",
    "non_ascii": "Crème brûlée, naïve café; Straße über Ærø.",
    "cjk": "你好，世界！今天是2024年，天气很好。",
    "multi_chunk": "First sentence here. Second one follows, longer than before. Third and last!",
}


def _run_method(method, text, audio, chunks, tone_aligner, align_model, language):
    words = split_words(text)
    if method == "whisperx-tiny":
        settings = load_settings({"ALIGN_MODEL": align_model, "DEVICE": "cpu"})
        return compute_word_timings(text, audio, RATE, chunks, language, "whisperx", settings)
    if method == "whisperx-tone":
        settings = tone_aligner(words, language)
        return compute_word_timings(text, audio, RATE, chunks, language, "whisperx", settings)
    if method == "estimate":
        return compute_word_timings(text, audio, RATE, chunks, language, "google",
                                    load_settings({}))
    heard = [w.strip(".,!?;:()").lower() for w in words]
    heard[1::4] = [""] * len(heard[1::4])  # a recognizer that misses every fourth word
    with SpeechServer(tone_recognizer(heard)) as server:
        return compute_word_timings(text, audio, RATE, chunks, language, "google",
                                    google_settings(server))


@pytest.mark.parametrize("name", sorted(TEXTS))
@pytest.mark.parametrize("method", ["whisperx-tiny", "whisperx-tone", "google", "estimate"])
def test_every_word_once_in_order_inside_the_audio(method, name, tone_aligner, align_model):
    text = TEXTS[name]
    words = split_words(text)
    audio, bursts = speech_for(words, gap=0.15)
    cuts = [len(words) // 3, 2 * len(words) // 3]
    chunks = chunk_spans(words, bursts, audio, cuts) if name in ("multi_chunk", "cjk") else []
    language = detect_language(text)
    result = _run_method(method, text, audio, chunks, tone_aligner, align_model, language)
    assert result.method == method.split("-")[0]
    assert_every_word(result, text, len(audio) / RATE)


def test_whisperx_timing_only_symbols_falls_through(align_model):
    audio, _ = speech_for(["&&", "??", "--"])
    settings = load_settings({"ALIGN_MODEL": align_model, "DEVICE": "cpu"})
    result = compute_word_timings("&& ?? --", audio, RATE, [], "en", "whisperx", settings)
    assert result.method == "estimate"
    assert result.fallback_reason.startswith("whisperx returned no timed words; ")
    assert_every_word(result, "&& ?? --", len(audio) / RATE)


def test_interpolated_words_sit_between_neighbours_without_confidence():
    text = "alpha 42 ## beta"
    # No sound and no gap between alpha and beta: the untimed words borrow room.
    audio, bursts = tone_speech([0.5, 0.0, 0.0, 0.5], [0.0, 0.0, 0.0, 0.2])
    with SpeechServer(tone_recognizer(["alpha", "", "", "beta"])) as server:
        result = compute_word_timings(text, audio, RATE, [], "en", "google",
                                      google_settings(server))
    alpha, number, hashes, beta = result.words
    assert number.confidence is None and hashes.confidence is None
    assert alpha.confidence is not None and beta.confidence is not None
    assert alpha.end_time <= number.start_time <= number.end_time <= hashes.start_time
    assert hashes.end_time <= beta.start_time
    assert number.end_time - number.start_time > 0.05
