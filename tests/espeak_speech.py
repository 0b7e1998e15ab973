"""Speech with exactly known word times, made by espeak-ng, for timing tests.

Two kinds:

- ``separated``: each word spoken on its own by the ``espeak-ng`` program,
  trimmed of its own silence and joined with known pauses, so every word's
  start and end are exact.
- ``continuous``: a whole text spoken by libespeak-ng through ctypes; its synth
  callback reports where each word starts (an event of type 1 with a sample
  position; a word opening with a stop starts at its closure). Ends are
  unknown there, and espeak sometimes speaks two short words as one
  (``of the``), so a word may have no start either (None).

Both come resampled to the worker's 24 kHz as float32 mono.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
from scipy.signal import resample_poly

from worker.text.words import split_words

RATE = 24000
SOUND = 10 ** (-40 / 20)         # a sample this close to the word's peak counts as sound
_SYNCHRONOUS = 2                 # espeak_AUDIO_OUTPUT: AUDIO_OUTPUT_SYNCHRONOUS
_RATE, _PITCH = 1, 3             # espeak_PARAMETER: espeakRATE, espeakPITCH
_WORD_EVENT = 1
_POS_CHARACTER, _CHARS_UTF8 = 1, 1


@dataclass
class Speech:
    audio: np.ndarray                 # float32 mono at ``rate``
    rate: int
    words: List[str]
    starts: List[Optional[float]]     # seconds; None where espeak reported no start
    ends: List[Optional[float]]       # seconds; None for continuous speech


def have_espeak_cli() -> bool:
    return shutil.which("espeak-ng") is not None


def have_libespeak() -> bool:
    return _library_path() is not None


def _to_rate(samples: np.ndarray, source: int, rate: int) -> np.ndarray:
    common = math.gcd(source, rate)
    return resample_poly(samples.astype(np.float64), rate // common,
                         source // common).astype(np.float32)


# ---- words one at a time, joined with known pauses ------------------------------

def _read_wav(path: Path) -> tuple:
    with wave.open(str(path)) as handle:
        frames = handle.readframes(handle.getnframes())
        return np.frombuffer(frames, np.int16) / 32768.0, handle.getframerate()


def _spoken_word(word: str, voice: str, wpm: int, pitch: int, folder: Path) -> tuple:
    out = folder / "word.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(wpm), "-p", str(pitch),
                    "-w", str(out), word], check=True, capture_output=True)
    return _read_wav(out)


def _trimmed(samples: np.ndarray) -> np.ndarray:
    """The word from its first to its last sample within 40 dB of its peak."""
    loud = np.flatnonzero(np.abs(samples) > SOUND * np.abs(samples).max())
    return samples[loud[0]:loud[-1] + 1] if loud.size else samples[:0]


def separated(words: Sequence[str], voice: str = "en", wpm: int = 175, pitch: int = 50,
              gaps: tuple = (0.08, 0.4), seed: int = 0, rate: int = RATE,
              noise_db: Optional[float] = None, edge: float = 0.3) -> Speech:
    """``words`` spoken one by one and joined with random pauses of ``gaps``
    seconds (``edge`` seconds of silence before the first and after the last);
    ``noise_db`` adds white noise at that level (dB below full scale)."""
    generator = np.random.default_rng(seed)
    pieces, starts, ends = [np.zeros(int(edge * rate), np.float32)], [], []
    at = pieces[0].size
    with tempfile.TemporaryDirectory() as folder:
        for index, word in enumerate(words):
            samples, source = _spoken_word(word, voice, wpm, pitch, Path(folder))
            spoken = _to_rate(_trimmed(samples), source, rate)
            starts.append(at / rate)
            ends.append((at + spoken.size) / rate)
            last = index == len(words) - 1
            pause = edge if last else float(generator.uniform(*gaps))
            pieces += [spoken, np.zeros(int(pause * rate), np.float32)]
            at += spoken.size + pieces[-1].size
    audio = np.concatenate(pieces)
    if noise_db is not None:
        audio = audio + generator.normal(0, 10 ** (noise_db / 20), audio.size).astype(np.float32)
    return Speech(audio.astype(np.float32), rate, list(words), starts, ends)


# ---- continuous speech with word starts from libespeak-ng ------------------------

class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))


def _library_path() -> Optional[str]:
    return ctypes.util.find_library("espeak-ng") or next(
        (str(p) for p in Path("/usr/lib").glob("*/libespeak-ng.so.1")), None)


class _Synth:
    """libespeak-ng in synchronous mode: audio and events collected per call."""

    def __init__(self):
        self.lib = ctypes.CDLL(_library_path())
        self.lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint,
                                          ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
                                          ctypes.c_void_p, ctypes.c_void_p]
        self.rate = self.lib.espeak_Initialize(_SYNCHRONOUS, 0, None, 0)
        self.chunks: list = []
        self.events: list = []
        self.callback = _CALLBACK(self._collect)  # kept: libespeak holds the pointer
        self.lib.espeak_SetSynthCallback(self.callback)

    def _collect(self, wav, count, events) -> int:
        if wav and count > 0:
            self.chunks.append(np.ctypeslib.as_array(wav, (count,)).copy())
        index = 0
        while events[index].type != 0:  # espeakEVENT_LIST_TERMINATED
            event = events[index]
            if event.type == _WORD_EVENT:
                self.events.append((event.text_position - 1, event.sample))
            index += 1
        return 0

    def speak(self, text: str, voice: str, wpm: int, pitch: int) -> tuple:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {voice!r}")
        self.lib.espeak_SetParameter(_RATE, wpm, 0)
        self.lib.espeak_SetParameter(_PITCH, pitch, 0)
        self.chunks, self.events = [], []
        data = text.encode()
        self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8,
                              None, None)
        self.lib.espeak_Synchronize()
        samples = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.int16)
        return samples / 32768.0, list(self.events)


@functools.lru_cache(maxsize=1)
def _synth() -> _Synth:
    return _Synth()  # libespeak-ng is one global engine per process


def _offsets(text: str, words: Sequence[str]) -> list:
    offsets, at = [], 0
    for word in words:
        at = text.index(word, at)  # every word is a stretch of the text, in order
        offsets.append(at)
        at += len(word)
    return offsets


def continuous(text: str, voice: str = "en", wpm: int = 175, pitch: int = 50,
               rate: int = RATE) -> Speech:
    """``text`` spoken as a whole, with the start of every word espeak reports."""
    words = split_words(text)
    samples, events = _synth().speak(text, voice, wpm, pitch)
    source = _synth().rate
    offsets = _offsets(text, words)
    starts: List[Optional[float]] = [None] * len(words)
    for position, sample in events:
        index = int(np.searchsorted(offsets, position, side="right")) - 1
        if 0 <= index < len(words) and starts[index] is None:
            starts[index] = sample / source
    audio = _to_rate(samples, source, rate)
    return Speech(audio, rate, words, starts, [None] * len(words))


# ---- long speech: many sentences, each word's start known ------------------------

_VOCABULARY = (
    "the a of and to in is was that for on with as by at from his her they we you "
    "it this an be are have had not but one all were when there can more will would "
    "time people year way day man thing woman life child world school state family "
    "student group country problem hand part place case week company system program "
    "question work government number night point home water room mother area money "
    "story fact month lot right study book eye job word business issue side kind head "
    "house service friend father power hour game line end member law car city name "
    "president team minute idea kid body information back parent face others level "
    "office door health person art war history party result change morning reason "
    "research girl guy moment air teacher force education foot boy age policy music "
    "market sense nation plan college interest death experience effect class control "
    "care field development role effort rate heart drug show leader light voice wife "
    "police mind price report decision son view relationship town road arm difference "
    "quiet green heavy bright simple narrow ancient gentle careful sudden distant warm "
    "walked carried listened remembered opened followed painted answered gathered "
    "slowly quickly together already almost perhaps tomorrow yesterday outside"
).split()


def _sentence(generator: np.random.Generator) -> str:
    count = int(generator.integers(5, 16))
    words = [str(w) for w in generator.choice(_VOCABULARY, count)]
    if count > 9:
        words[count // 2] += ","
    return " ".join(words).capitalize() + generator.choice([".", ".", ".", "?", "!"])


def long_speech(seconds: float, voice: str = "en", wpm: int = 175, pitch: int = 50,
                seed: int = 0, paragraph_pause: float = 0.6, rate: int = RATE) -> Speech:
    """At least ``seconds`` of continuous speech made of random sentences, spoken
    a paragraph (five sentences) at a time and joined with pauses; every word
    start espeak reports is known."""
    generator = np.random.default_rng(seed)
    pieces, words, starts, at = [], [], [], 0
    gap = np.zeros(int(paragraph_pause * rate), np.float32)
    while at < seconds * rate:
        part = continuous(" ".join(_sentence(generator) for _ in range(5)), voice, wpm,
                          pitch, rate)
        pieces += [part.audio, gap]
        words += part.words
        starts += [None if s is None else s + at / rate for s in part.starts]
        at += part.audio.size + gap.size
    return Speech(np.concatenate(pieces), rate, words, starts, [None] * len(words))
