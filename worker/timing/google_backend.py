"""Google Cloud Speech: transcription with word offsets, in pieces under its
one-minute limit; the chain maps the words it heard onto the text's.

google-cloud-speech is imported inside the functions that need it.
"""
from __future__ import annotations

import json
from typing import List, Sequence

import numpy as np

from worker.timing.backend import ALIGN_RATE, ChunkSpan, MethodUnavailable
from worker.timing.spans import Recognized, quietest

GOOGLE_PIECE_SECONDS = 55.0      # synchronous Recognize refuses audio over one minute
GOOGLE_TIMEOUT_SECONDS = 120.0
# Retrying an outage for long only delays the job: the estimate is next in line.
GOOGLE_RETRY_SECONDS = 12.0
# Google wants a region with most languages; these are the usual defaults.
_GOOGLE_LANGUAGES = {"en": "en-US", "zh": "cmn-Hans-CN", "ja": "ja-JP", "ko": "ko-KR",
                     "de": "de-DE", "fr": "fr-FR", "es": "es-ES", "it": "it-IT",
                     "pt": "pt-BR", "ru": "ru-RU", "nl": "nl-NL", "pl": "pl-PL"}
_GOOGLE_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)


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


def recognize(words, audio16, chunks, language, settings) -> List[Recognized]:
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
