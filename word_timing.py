"""Word timings for generated speech: WhisperX alignment, Google Speech, or an estimate.

The text is known (it is what the model was asked to say), so the first choice
aligns it to the audio with WhisperX's wav2vec2 aligner instead of transcribing.
Google Speech transcribes, so its words are mapped back onto the words of the
text. When neither can run, the timings are estimated from where the audio is
loud and how long each word is. Whatever produced them, the result lists every
word of the text once, in order, inside the audio: words no method could time
are placed between their neighbours with ``confidence`` None.

torch, whisperx and google are imported inside the functions that need them,
so importing this module stays cheap.
"""
from __future__ import annotations

import importlib.util
import itertools
import json
import logging
import math
import unicodedata
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

from timing_formats import is_cjk, join_words
from word_spans import (Recognized, estimate, finalize, map_onto, quietest,
                        speech_regions)

log = logging.getLogger(__name__)

METHODS = ("whisperx", "google", "auto")
ALIGN_RATE = 16000               # what wav2vec2 aligners and our Google requests use
GOOGLE_PIECE_SECONDS = 55.0      # synchronous Recognize refuses audio over one minute
GOOGLE_TIMEOUT_SECONDS = 120.0
# Retrying an outage for long only delays the job: the estimate is next in line.
GOOGLE_RETRY_SECONDS = 12.0
_CHAINS = {"whisperx": ("whisperx", "google"), "auto": ("whisperx", "google"),
           "google": ("google",)}
# Google wants a region with most languages; these are the usual defaults.
_GOOGLE_LANGUAGES = {"en": "en-US", "zh": "cmn-Hans-CN", "ja": "ja-JP", "ko": "ko-KR",
                     "de": "de-DE", "fr": "fr-FR", "es": "es-ES", "it": "it-IT",
                     "pt": "pt-BR", "ru": "ru-RU", "nl": "nl-NL", "pl": "pl-PL"}
_GOOGLE_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)

# (language, align model, device) -> (model, metadata). Loading an aligner takes
# seconds and hundreds of MB, so each is loaded once per process.
_ALIGNERS: dict = {}


@dataclass(frozen=True)
class ChunkSpan:
    """One generated chunk: its text and where it lies in the final audio."""
    text: str
    start: float
    end: float


@dataclass
class TimingResult:
    words: list                     # list[WordTiming]: exactly the words of the text
    method: str                     # "whisperx" | "google" | "estimate"
    fallback_reason: Optional[str]  # None, or why the requested method was not used
    language: str


class MethodUnavailable(Exception):
    """The method cannot run here (not installed, no credentials): a fallback, not a failure."""


# ---- words -----------------------------------------------------------------

def _is_cjk_letter(char: str) -> bool:
    return is_cjk(char) and unicodedata.category(char)[0] == "L"


def detect_language(text: str) -> str:
    """``zh`` when Han or kana characters are at least as many as the other
    words (each such character is about a word), else ``en``."""
    cjk = sum(1 for char in text if _is_cjk_letter(char))
    others = sum(1 for token in text.split() for run in _latin_runs(token))
    return "zh" if cjk and cjk >= others else "en"


def _latin_runs(token: str) -> list:
    return [run for is_cjk_run, run in _runs(token) if not is_cjk_run
            and any(char.isalnum() for char in run)]


def _runs(token: str) -> list:
    return [(key, "".join(group)) for key, group in itertools.groupby(token, _is_cjk_letter)]


def split_words(text: str) -> List[str]:
    """The words of ``text``: whitespace-separated tokens, punctuation kept with its word.

    Chinese and Japanese are written without spaces, so there every Han or
    kana character is a word of its own (the unit WhisperX aligns for them);
    punctuation stays on the character before it (opening brackets and quotes
    on the one after), and Latin or digit runs inside such text stay whole.
    """
    words: List[str] = []
    for token in text.split():
        words.extend(_split_cjk(token) if any(map(_is_cjk_letter, token)) else [token])
    return words


def _is_opening(char: str) -> bool:
    return unicodedata.category(char) in ("Ps", "Pi")


def _is_trailing(char: str) -> bool:
    return unicodedata.category(char)[0] == "P" and not _is_opening(char)


def _count_while(text: str, predicate) -> int:
    return next((index for index, char in enumerate(text) if not predicate(char)), len(text))


def _split_cjk(token: str) -> List[str]:
    units: List[str] = []
    pending = ""  # opening punctuation waiting for the unit it opens
    for letters, run in _runs(token):
        if letters:
            units.extend(pending + char if n == 0 else char for n, char in enumerate(run))
            pending = ""
            continue
        if units and not pending:
            lead = _count_while(run, _is_trailing)
            units[-1] += run[:lead]
            run = run[lead:]
        elif not units:  # punctuation opening the token waits for its first unit
            lead = _count_while(run, lambda char: unicodedata.category(char)[0] == "P")
            pending += run[:lead]
            run = run[lead:]
        cut = len(run) - _count_while(run[::-1], _is_opening)
        if run[:cut]:
            units.append(pending + run[:cut])
            pending = ""
        pending += run[cut:]
    if pending and units:
        units[-1] += pending
    elif pending:
        units.append(pending)
    return units


# ---- the chain ---------------------------------------------------------------

def compute_word_timings(text: str, audio, sample_rate: int, chunks: Sequence[ChunkSpan],
                         language: str, method: str, settings) -> TimingResult:
    """Time every word of ``text`` in ``audio`` (float32 mono at ``sample_rate``).

    ``method`` picks the first aligner to try (``whisperx`` and ``auto`` try
    WhisperX, then Google; ``google`` tries Google); the estimate is the last
    resort. The result names the method that really produced the timings.
    """
    if method not in METHODS:
        raise ValueError(f"timing method {method!r} is not one of {', '.join(METHODS)}")
    words = split_words(text)
    if not words:
        return TimingResult([], "estimate", "the text has no words", language)
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    duration = audio.size / float(sample_rate)
    audio16 = _resample(audio, sample_rate)
    reasons: List[str] = []
    for name in _CHAINS[method]:
        spans = _try_method(name, reasons, words, audio16, chunks, language, settings)
        if spans:
            return TimingResult(finalize(words, spans, duration), name,
                                "; ".join(reasons) or None, language)
    spans = estimate(words, audio, sample_rate, _chunk_groups(words, chunks, duration))
    log.info("word timings estimated: %s", "; ".join(reasons))
    return TimingResult(finalize(words, spans, duration), "estimate", "; ".join(reasons),
                        language)


def _try_method(name, reasons, words, audio16, chunks, language, settings):
    """The spans one aligner gives the words; on any shortfall, note why in
    ``reasons`` and return None."""
    runner = {"whisperx": _whisperx_words, "google": _google_words}[name]
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


def _resample(audio: np.ndarray, rate: int) -> np.ndarray:
    if rate == ALIGN_RATE:
        return audio
    from scipy.signal import resample_poly

    common = math.gcd(int(rate), ALIGN_RATE)
    return resample_poly(audio, ALIGN_RATE // common, int(rate) // common).astype(np.float32)


def _chunk_groups(words: Sequence[str], chunks: Sequence[ChunkSpan], duration: float) -> list:
    """``(first word, end word, start s, end s)`` per chunk when the chunks hold
    exactly the words of the text, else one group for the whole audio."""
    per_chunk = [split_words(chunk.text) for chunk in chunks]
    if not chunks or [w for chunk_words in per_chunk for w in chunk_words] != list(words):
        if chunks:
            log.warning("chunk texts do not hold the words of the text; timing it as one piece")
        return [(0, len(words), 0.0, duration)]
    groups, first = [], 0
    for chunk, chunk_words in zip(chunks, per_chunk):
        start = min(max(chunk.start, 0.0), duration)
        groups.append((first, first + len(chunk_words), start,
                       min(max(chunk.end, start), duration)))
        first += len(chunk_words)
    return [group for group in groups if group[1] > group[0]]


# ---- WhisperX ----------------------------------------------------------------

def _device(settings) -> str:
    if settings.device == "cuda":
        return "cuda"
    if settings.device == "auto":
        import torch

        if torch.cuda.is_available():
            return "cuda"
    return "cpu"


def _aligner(whisperx, language: str, settings):
    device = _device(settings)
    key = (language, settings.align_model, device)
    if key not in _ALIGNERS:
        # Keep downloaded aligners with the other models, so the model cache
        # (and its S3 mirror) holds them too.
        model_dir = (str(settings.model_cache_dir / "alignment")
                     if settings.model_cache_dir else None)
        log.info("loading the %s aligner (%s) on %s", language,
                 settings.align_model or "whisperx default", device)
        _ALIGNERS[key] = whisperx.load_align_model(
            language, device, model_name=settings.align_model, model_dir=model_dir)
    model, metadata = _ALIGNERS[key]
    return model, metadata, device


def _whisperx_words(words, audio16, chunks, language, settings) -> List[Recognized]:
    try:
        import whisperx
    except (ImportError, OSError) as exc:
        raise MethodUnavailable(f"whisperx cannot be imported ({exc})") from None
    model, metadata, device = _aligner(whisperx, language, settings)
    recognized: List[Recognized] = []
    for first, end, start, stop in _chunk_groups(words, chunks, audio16.size / ALIGN_RATE):
        piece = audio16[int(start * ALIGN_RATE):int(stop * ALIGN_RATE)]
        if piece.size == 0:
            continue
        # The known text is the segment: alignment only, no transcription.
        segment = {"text": join_words(words[first:end]), "start": 0.0,
                   "end": piece.size / ALIGN_RATE}
        result = whisperx.align([segment], model, metadata, piece, device,
                                return_char_alignments=False)
        timed = _whisperx_timed(result.get("word_segments", []), start)
        recognized.extend(_inside_speech(timed, piece, start))
    return recognized


def _inside_speech(timed: List[Recognized], piece: np.ndarray, offset: float) -> List[Recognized]:
    """CTC gives the leading silence to the first character and the trailing
    one to the last: pull those two edges in to where the sound starts and ends
    (a low threshold, so quiet consonants stay inside)."""
    regions = speech_regions(piece, ALIGN_RATE, relative=0.02)
    if not timed or not regions:
        return timed
    onset, offset_end = offset + regions[0][0], offset + regions[-1][1]
    word, start, end, score = timed[0]
    if start < onset < end:
        timed[0] = (word, onset, end, score)
    word, start, end, score = timed[-1]
    if start < offset_end < end:
        timed[-1] = (word, start, offset_end, score)
    return timed


def _whisperx_timed(word_segments, offset: float) -> List[Recognized]:
    """The words WhisperX really aligned; those without a score it only
    interpolated, and ours interpolates them the same way for every method."""
    timed = []
    for item in word_segments:
        values = [item.get(key) for key in ("start", "end", "score")]
        if all(value is not None and math.isfinite(value) for value in values):
            start, end, score = (float(value) for value in values)
            timed.append((item["word"], offset + start, offset + end, min(max(score, 0.0), 1.0)))
    return timed


# ---- Google Speech -----------------------------------------------------------

def _google_credentials(settings):
    """Credentials from GOOGLE_CREDENTIALS_JSON (text) or GOOGLE_APPLICATION_CREDENTIALS (file)."""
    if settings.google_credentials_json:
        name, text = "GOOGLE_CREDENTIALS_JSON", settings.google_credentials_json
    else:
        name = "GOOGLE_APPLICATION_CREDENTIALS"
        try:
            with open(settings.google_application_credentials, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as exc:
            raise ValueError(f"{name}: cannot read the file ({exc})") from None
    try:
        info = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{name} is not valid JSON ({exc})") from None
    kind = info.get("type") if isinstance(info, dict) else None
    # Only the two kinds a worker is given; google.auth's loader for any kind
    # is deprecated because it also runs external-account commands.
    if kind == "service_account":
        from google.oauth2 import service_account

        return service_account.Credentials.from_service_account_info(info, scopes=_GOOGLE_SCOPES)
    if kind == "authorized_user":
        from google.oauth2 import credentials

        return credentials.Credentials.from_authorized_user_info(info, scopes=_GOOGLE_SCOPES)
    raise ValueError(f"{name} holds credentials of type {kind!r}: use a service account "
                     "key (type service_account) or authorized_user credentials")


def _is_loopback(endpoint: str) -> bool:
    host = endpoint.rsplit(":", 1)[0].strip("[]").lower()
    return host in ("localhost", "127.0.0.1", "::1")


def _google_client(settings):
    try:
        from google.cloud import speech
    except ImportError as exc:
        raise MethodUnavailable(f"google-cloud-speech cannot be imported ({exc})") from None
    if not (settings.google_credentials_json or settings.google_application_credentials):
        raise MethodUnavailable(
            "no credentials (set GOOGLE_APPLICATION_CREDENTIALS or GOOGLE_CREDENTIALS_JSON)")
    credentials = _google_credentials(settings)
    endpoint = settings.google_speech_endpoint
    if endpoint and _is_loopback(endpoint):
        import grpc
        from google.cloud.speech_v1.services.speech.transports import SpeechGrpcTransport

        # A loopback endpoint is an emulator or a test server: it speaks plain
        # gRPC without TLS, and the credentials must not travel unencrypted.
        transport = SpeechGrpcTransport(channel=grpc.insecure_channel(endpoint))
        return speech, speech.SpeechClient(transport=transport)
    options = {"api_endpoint": endpoint} if endpoint else None
    return speech, speech.SpeechClient(credentials=credentials, client_options=options)


def _google_words(words, audio16, chunks, language, settings) -> List[Recognized]:
    speech, client = _google_client(settings)
    config = speech.RecognitionConfig(
        encoding=speech.RecognitionConfig.AudioEncoding.LINEAR16,
        sample_rate_hertz=ALIGN_RATE, audio_channel_count=1,
        language_code=_GOOGLE_LANGUAGES.get(language, language),
        enable_word_time_offsets=True, enable_word_confidence=True)
    recognized: List[Recognized] = []
    try:
        for start, stop in _google_pieces(audio16, chunks):
            piece = audio16[int(start * ALIGN_RATE):int(stop * ALIGN_RATE)]
            pcm = (np.clip(piece, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
            response = client.recognize(config=config,
                                        audio=speech.RecognitionAudio(content=pcm),
                                        retry=_google_retry(), timeout=GOOGLE_TIMEOUT_SECONDS)
            recognized.extend(_google_timed(response, start))
    finally:
        client.transport.close()
    return recognized


def _google_retry():
    """Retry what is transient, briefly (the library's default keeps retrying
    for over an hour, and a job waits on it)."""
    from google.api_core import exceptions, retry

    return retry.Retry(initial=0.5, maximum=4.0, multiplier=2.0,
                       timeout=GOOGLE_RETRY_SECONDS,
                       predicate=retry.if_exception_type(exceptions.ServiceUnavailable,
                                                         exceptions.DeadlineExceeded))


def _google_timed(response, offset: float) -> List[Recognized]:
    timed = []
    for result in response.results:
        if not result.alternatives:
            continue
        best = result.alternatives[0]
        for item in best.words:
            # proto3 reads an unset confidence as 0.0: that means "unknown".
            confidence = item.confidence or best.confidence or None
            timed.append((item.word, offset + item.start_time.total_seconds(),
                          offset + item.end_time.total_seconds(), confidence))
    return timed


def _google_pieces(audio16: np.ndarray, chunks: Sequence[ChunkSpan]) -> list:
    """``(start, end)`` pieces under the one-minute limit, cut where chunks meet
    (a pause between sentences) or else at the quietest moment near the limit."""
    total = audio16.size / ALIGN_RATE
    cuts = sorted({chunk.start for chunk in chunks if 0.0 < chunk.start < total})
    pieces, start = [], 0.0
    while total - start > GOOGLE_PIECE_SECONDS:
        fitting = [cut for cut in cuts if start + GOOGLE_PIECE_SECONDS / 2 <= cut
                   <= start + GOOGLE_PIECE_SECONDS]
        stop = fitting[-1] if fitting else quietest(
            audio16, start + GOOGLE_PIECE_SECONDS / 2, start + GOOGLE_PIECE_SECONDS, ALIGN_RATE)
        pieces.append((start, stop))
        start = stop
    pieces.append((start, total))
    return pieces
