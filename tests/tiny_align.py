"""Test builders for word timing: tiny aligners, NLTK data, a local Speech server.

Nothing here downloads anything. The tiny wav2vec2 CTC folder has random
weights (the real loading and alignment code runs, the times are arbitrary);
``ToneCTC`` is a made-up acoustic model whose emissions are known, so tests can
check where WhisperX's real alignment algorithm puts each word. Tone "speech"
gives every word a tone of its own frequency, so both it and the local Google
Speech server can tell from the audio alone which word is sounding when.
"""
from __future__ import annotations

import json
import string
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

VOCAB = ["<pad>", "<s>", "</s>", "<unk>", "|"] + list(string.ascii_uppercase) + ["'"]
TONE_BASE_HZ, TONE_STEP_HZ, TONE_COUNT = 300, 100, 30
FRAME = 320  # samples at 16 kHz: wav2vec2's 20 ms frame, and 50 Hz FFT bins
PUNKT_FILES = ("abbrev_types.txt", "collocations.tab", "sent_starters.txt", "ortho_context.tab")


def build_align_model(folder: Path) -> Path:
    """A transformers wav2vec2 CTC folder that whisperx.load_align_model accepts."""
    import torch
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,
        Wav2Vec2Processor,
    )

    folder.mkdir(parents=True, exist_ok=True)
    vocab_file = folder / "vocab.json"
    vocab_file.write_text(json.dumps({token: n for n, token in enumerate(VOCAB)}))
    tokenizer = Wav2Vec2CTCTokenizer(str(vocab_file), unk_token="<unk>", pad_token="<pad>",
                                     word_delimiter_token="|")
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000,
                                         padding_value=0.0, do_normalize=True,
                                         return_attention_mask=False)
    Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(folder)
    torch.manual_seed(0)
    config = Wav2Vec2Config(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=1,
                            num_attention_heads=2, intermediate_size=64, conv_dim=(32,) * 7,
                            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
                            pad_token_id=0)
    Wav2Vec2ForCTC(config).save_pretrained(folder)
    return folder


def build_punkt(root: Path) -> Path:
    """A minimal ``punkt_tab`` (empty English parameters) under an NLTK data root."""
    english = root / "tokenizers" / "punkt_tab" / "english"
    english.mkdir(parents=True, exist_ok=True)
    for name in PUNKT_FILES:
        (english / name).write_text("")
    return root


def use_nltk_data(root: Path, monkeypatch) -> None:
    """Make NLTK find data under ``root``. NLTK reads NLTK_DATA only when it is
    first imported, and whisperx imports it lazily: set the variable for a
    first import, and put ``root`` on ``nltk.data.path`` for a later one."""
    monkeypatch.setenv("NLTK_DATA", str(root))
    import nltk

    if str(root) not in nltk.data.path:
        monkeypatch.setattr(nltk.data, "path", [str(root), *nltk.data.path])


# ---- tone "speech" ------------------------------------------------------------

def tone_hz(index: int) -> int:
    return TONE_BASE_HZ + TONE_STEP_HZ * (index % TONE_COUNT)


def tone_speech(durations: Sequence[float], gaps: Sequence[float], rate: int = 24000,
                lead: float = 0.3,
                tail: float = 0.3) -> Tuple[np.ndarray, List[Tuple[float, float]]]:
    """Word ``k`` as a tone of ``tone_hz(k)`` lasting ``durations[k]``, with
    ``gaps[k]`` of near-silence after it. Returns the audio and each word's
    ``(start, end)`` in seconds."""
    pieces, bursts, now = [np.zeros(int(lead * rate), np.float32)], [], lead
    rng = np.random.default_rng(0)
    for index, (length, gap) in enumerate(zip(durations, gaps)):
        count = int(round(length * rate))
        t = np.arange(count) / rate
        pieces.append((0.5 * np.sin(2 * np.pi * tone_hz(index) * t)).astype(np.float32))
        bursts.append((now, now + count / rate))
        silence = int(round(gap * rate))
        pieces.append((1e-4 * rng.standard_normal(silence)).astype(np.float32))
        now += (count + silence) / rate
    pieces.append(np.zeros(int(tail * rate), np.float32))
    return np.concatenate(pieces), bursts


def frame_tones(audio16: np.ndarray) -> np.ndarray:
    """Per 20 ms frame of 16 kHz audio: the tone index sounding, or -1 for silence."""
    count = audio16.size // FRAME
    frames = audio16[:count * FRAME].reshape(count, FRAME).astype(np.float64)
    loud = np.sqrt((frames ** 2).mean(axis=1)) > 0.05
    peaks = np.abs(np.fft.rfft(frames, axis=1)).argmax(axis=1) * (16000 / FRAME)
    index = np.rint((peaks - TONE_BASE_HZ) / TONE_STEP_HZ).astype(int)
    return np.where(loud & (index >= 0) & (index < TONE_COUNT), index, -1)


def tone_runs(audio16: np.ndarray) -> List[Tuple[int, float, float]]:
    """``(tone index, start s, end s)`` of each run of frames with the same tone."""
    runs, tones = [], frame_tones(audio16)
    for n, tone in enumerate(tones):
        if tone < 0:
            continue
        if runs and runs[-1][0] == tone and runs[-1][2] == n * FRAME / 16000:
            runs[-1] = (tone, runs[-1][1], (n + 1) * FRAME / 16000)
        else:
            runs.append((int(tone), n * FRAME / 16000, (n + 1) * FRAME / 16000))
    return runs


class ToneCTC:
    """A made-up wav2vec2 stand-in: in a frame sounding tone ``k`` the letters
    of word ``k`` (and the blank) are likely, in silence the word delimiter
    (and the blank). whisperx.align runs its real trellis and backtracking on
    these emissions; no trained aligner can exist on this machine."""

    def __init__(self, words: Sequence[str]):
        import torch

        self.torch = torch
        self.letters = [[VOCAB.index(c) for c in word.upper() if c in VOCAB[5:]]
                        for word in words]

    def __call__(self, waveform):
        tones = frame_tones(waveform[0].cpu().numpy())
        logits = self.torch.full((1, len(tones), len(VOCAB)), -8.0)
        for n, tone in enumerate(tones):
            logits[0, n, 0] = 4.0
            if tone < 0:
                logits[0, n, VOCAB.index("|")] = 4.0
            else:
                for index in range(tone, len(self.letters), TONE_COUNT):
                    logits[0, n, self.letters[index]] = 4.0
        return _Output(logits)

    def to(self, device):
        return self

    def eval(self):
        return self

    @staticmethod
    def metadata(language: str = "en") -> dict:
        return {"language": language, "type": "huggingface",
                "dictionary": {token.lower(): n for n, token in enumerate(VOCAB)}}


@dataclass
class _Output:
    logits: object


# ---- a local Google Speech server ---------------------------------------------

@dataclass
class Abort:
    """Answer a request with this gRPC status instead of a response."""
    code: object   # grpc.StatusCode
    details: str


def tone_recognizer(heard: Sequence[str]) -> Callable:
    """A Recognize answer built from the request's own audio: each tone run
    becomes ``heard[k]`` at the run's time, as a recognizer would report it."""
    def respond(request):
        from google.cloud import speech

        audio16 = np.frombuffer(request.audio.content, dtype="<i2").astype(np.float32) / 32767
        words = [speech.WordInfo(word=heard[k], start_time=_duration(start),
                                 end_time=_duration(end), confidence=0.8)
                 for k, start, end in tone_runs(audio16) if k < len(heard) and heard[k]]
        if not words:
            return speech.RecognizeResponse()
        alternative = speech.SpeechRecognitionAlternative(
            transcript=" ".join(w.word for w in words), confidence=0.8, words=words)
        return speech.RecognizeResponse(
            results=[speech.SpeechRecognitionResult(alternatives=[alternative])])
    return respond


def _duration(seconds: float):
    from datetime import timedelta

    return timedelta(seconds=round(seconds, 3))


@dataclass
class SpeechServer:
    """``google.cloud.speech.v1.Speech/Recognize`` on 127.0.0.1, over real gRPC
    with real protobuf messages; ``respond(request)`` returns a
    RecognizeResponse or an ``Abort``. Requests are kept for inspection."""
    respond: Callable
    requests: list = field(default_factory=list)
    endpoint: Optional[str] = None
    _server: object = None

    def __enter__(self) -> SpeechServer:
        import grpc
        from google.cloud import speech

        def recognize(request, context):
            self.requests.append(request)
            answer = self.respond(request)
            if isinstance(answer, Abort):
                context.abort(answer.code, answer.details)
            return answer

        handler = grpc.method_handlers_generic_handler("google.cloud.speech.v1.Speech", {
            "Recognize": grpc.unary_unary_rpc_method_handler(
                recognize, request_deserializer=speech.RecognizeRequest.deserialize,
                response_serializer=speech.RecognizeResponse.serialize)})
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        self._server.add_generic_rpc_handlers((handler,))
        port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        self.endpoint = f"127.0.0.1:{port}"
        return self

    def __exit__(self, *exc) -> None:
        self._server.stop(grace=None).wait()


def authorized_user_json() -> str:
    """Credentials of the ``authorized_user`` kind: parse as real ones, never used
    here (a loopback endpoint gets no credentials)."""
    return json.dumps({"type": "authorized_user", "client_id": "test.apps.example",
                       "client_secret": "not-a-secret", "refresh_token": "not-a-token"})

