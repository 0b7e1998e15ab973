"""Word timings for speech: WhisperX alignment, Google Speech, or an estimate.

The text is known (it is what the model was asked to say), so the first choice
aligns it to the audio with WhisperX's wav2vec2 aligner instead of transcribing.
Google Speech transcribes, so its words are mapped back onto the words of the
text. When neither can run, the timings are estimated from where the audio is
loud and how long each word is. Whatever produced them, the result lists every
word of the text once, in order, inside the audio: words no method could time
are placed between their neighbours with ``confidence`` None.
"""
from __future__ import annotations

import importlib.util
import logging
from typing import List, Optional, Sequence

import numpy as np

from worker.text.words import split_words
from worker.timing import google_backend, whisperx_backend
from worker.timing.backend import (
    ChunkSpan,
    MethodUnavailable,
    TimingResult,
    WrittenWords,
    chunk_groups,
    resample,
)
from worker.timing.fallback import estimate
from worker.timing.spans import finalize, map_onto

log = logging.getLogger(__name__)

METHODS = ("whisperx", "google", "auto")
_CHAINS = {"whisperx": ("whisperx", "google"), "auto": ("whisperx", "google"),
           "google": ("google",)}
_BACKENDS = {"whisperx": whisperx_backend.recognize, "google": google_backend.recognize}


def compute_word_timings(text: str, audio, sample_rate: int, chunks: Sequence[ChunkSpan],
                         language: str, method: str, settings,
                         written: Optional[WrittenWords] = None) -> TimingResult:
    """Time every word of ``text`` in ``audio`` (float32 mono at ``sample_rate``).

    ``method`` picks the first aligner to try (``whisperx`` and ``auto`` try
    WhisperX, then Google; ``google`` tries Google); the estimate is the last
    resort. The result names the method that really produced the timings.
    With ``written``, ``text`` is what was spoken and the result lists the
    written words instead, each inside the chunk that says it.
    """
    if method not in METHODS:
        raise ValueError(f"timing method {method!r} is not one of {', '.join(METHODS)}")
    words = split_words(text)
    if not words:
        return TimingResult([], "estimate", "the text has no words", language)
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    duration = audio.size / float(sample_rate)
    audio16 = resample(audio, sample_rate)
    reasons: List[str] = []
    for name in _CHAINS[method]:
        spans = _try_method(name, reasons, words, audio16, chunks, language, settings)
        if spans:
            return TimingResult(_final(words, spans, duration, written), name,
                                "; ".join(reasons) or None, language)
    spans = estimate(words, audio, sample_rate, chunk_groups(words, chunks, duration), language)
    log.info("word timings estimated: %s", "; ".join(reasons))
    return TimingResult(_final(words, spans, duration, written), "estimate",
                        "; ".join(reasons), language)


def _final(words, spans, duration: float, written: Optional[WrittenWords]) -> list:
    """The every-word list: of the spoken words, or of the written ones, each
    written word kept inside its chunk (so none lands in a pause between chunks)."""
    if written is None:
        return finalize(words, spans, duration)
    spans = written.to_written(list(spans))
    timed = []
    for first, end, start, stop in written.groups:
        low = min(max(start, 0.0), duration)
        timed += finalize(written.words[first:end], spans[first:end],
                          min(max(stop, low), duration), floor=low)
    return timed


def _try_method(name, reasons, words, audio16, chunks, language, settings):
    """The spans one aligner gives the words; on any shortfall, note why in
    ``reasons`` and return None."""
    runner = _BACKENDS[name]
    try:
        recognized = runner(words, audio16, chunks, language, settings)
    except MethodUnavailable as exc:
        reasons.append(f"{name} unavailable: {exc}")
        return None
    except Exception as exc:  # any aligner failure must fall through, never fail the job
        log.warning("word timing with %s failed", name, exc_info=True)
        reasons.append(f"{name} failed: {type(exc).__name__}: {exc}")
        return None
    spans = map_onto(words, recognized)
    if not any(spans):
        reasons.append(f"{name} returned no timed words")
        return None
    return spans


def available_methods(settings) -> List[str]:
    """The methods that could run here, by what is installed and configured."""
    methods = []
    if _installed("whisperx"):
        methods.append("whisperx")
    if _installed("google.cloud.speech") and (settings.google_credentials_json
                                              or settings.google_application_credentials):
        methods.append("google")
    return methods + ["estimate"]


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError, AttributeError):  # a None entry in sys.modules
        return False
