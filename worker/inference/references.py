"""The reference voice as the model takes it: edges trimmed, loudness raised,
resampled, as a mel, prepared once per voice and kept in a small cache.

What ``preprocess_ref_audio_text``, ``infer_batch_process`` and ``CFM.sample``
of the f5-tts package do to a reference on every call, done once here.
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

TARGET_RMS = 0.1
EDGE_SILENCE_DB = -42.0       # the package trims reference edges quieter than this
EDGE_STEP_S = 0.01            # ... in 10 ms steps (pydub's detect_leading_silence)
REFERENCE_TAIL_S = 0.05       # ... and appends this much silence
REFERENCE_CACHE_SIZE = 16     # prepared references kept per model (~0.5 MB each)


@dataclass(frozen=True)
class PreparedReference:
    mel: object          # (1, frames + 1, n_mels) on the model's device, in its dtype
    frames: int          # samples // hop: where the generated part of each item starts
    seconds: float
    rms: float           # of the reference as given, to restore the output's loudness


class ReferenceCache:
    """A small LRU of prepared references, keyed by a hash of the samples, rate
    and transcript; safe to share between threads."""

    def __init__(self, capacity: int = REFERENCE_CACHE_SIZE):
        self.capacity = capacity
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str, make):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
            self.misses += 1
        value = make()
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return value


def package_ref_text(ref_text: str) -> str:
    """The transcript ending as ``preprocess_ref_audio_text`` makes it end: with
    ". " (or "。"), which the duration rule and the chunk size count."""
    ref_text = ref_text.strip()
    if ref_text.endswith("。"):
        return ref_text
    return ref_text + " " if ref_text.endswith(".") else ref_text + ". "


def trim_silent_edges(samples: np.ndarray, rate: int) -> np.ndarray:
    """The clip without its quiet edges plus a short tail of silence, as the
    package prepares a reference; a clip quiet throughout is kept as it is."""
    samples = np.asarray(samples, dtype=np.float32)
    step = max(1, int(round(rate * EDGE_STEP_S)))

    def quiet_lead(values: np.ndarray) -> int:
        starts = np.arange(0, len(values), step)
        energy = np.add.reduceat(np.square(values, dtype=np.float64), starts)
        counts = np.diff(np.append(starts, len(values)))
        level = 10 * np.log10(np.maximum(energy / counts, 1e-20))
        loud = np.flatnonzero(level >= EDGE_SILENCE_DB)
        return int(starts[loud[0]]) if len(loud) else len(values)

    if len(samples) == 0:
        return samples
    start = quiet_lead(samples)
    if start >= len(samples):
        return samples
    end = len(samples) - quiet_lead(samples[::-1])
    tail = np.zeros(int(REFERENCE_TAIL_S * rate), dtype=np.float32)
    return np.concatenate([samples[start:end], tail])


def reference_key(samples: np.ndarray, rate: int, ref_text: str) -> str:
    digest = hashlib.blake2b(np.ascontiguousarray(samples, dtype=np.float32).tobytes(),
                             digest_size=16)
    digest.update(f"|{rate}|{ref_text}".encode())
    return digest.hexdigest()


def prepared_reference(loaded, samples: np.ndarray, rate: int,
                       ref_text: str) -> PreparedReference:
    """The reference as the model takes it, from the model's cache when seen before."""
    key = reference_key(samples, rate, ref_text)
    return loaded.references.get(key, lambda: prepare_reference(loaded, samples, rate))


def prepare_reference(loaded, samples: np.ndarray, rate: int) -> PreparedReference:
    """Edges, loudness, resampling and mel as the package's
    ``preprocess_ref_audio_text``, ``infer_batch_process`` and ``CFM.sample`` do
    them, once per reference instead of once per job and chunk."""
    import torch
    import torchaudio

    audio = torch.from_numpy(trim_silent_edges(samples, rate)).unsqueeze(0)
    rms = float(torch.sqrt(torch.mean(torch.square(audio))))
    if rms < TARGET_RMS:
        audio = audio * TARGET_RMS / max(rms, 1e-8)
    if rate != loaded.sample_rate:
        audio = torchaudio.transforms.Resample(rate, loaded.sample_rate)(audio)
    audio = audio.to(loaded.spec.device)
    mel = loaded.model.mel_spec(audio).permute(0, 2, 1)
    mel = mel.to(next(loaded.model.parameters()).dtype)
    return PreparedReference(mel, audio.shape[-1] // loaded.hop_length,
                             audio.shape[-1] / loaded.sample_rate, rms)
