"""The segment store: each generated script segment kept under a key derived
from everything that determines its audio, and reused byte for byte.

A segment's audio is a pure function of its inputs (text after the front end,
reference, seed, speed, duration, steps, guidance, checkpoint, numerics), so
a later script that asks for the same segment, or a re-delivery of a job
that crashed after storing it, takes it from the bucket instead of
generating it again. The audio is stored as 32-bit float WAV (lossless, so a
reused segment joins the track with exactly the samples it was made with),
with a small JSON beside it that keeps where its chunks lie (for timing).
"""
from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from s3_utils import Storage
from worker.core import keys

MAX_SEED = 2**31 - 1
KEY_VERSION = 1   # bump when what a key covers changes


@dataclass(frozen=True)
class StoredSegment:
    samples: np.ndarray                     # float32 mono
    sample_rate: int
    chunks: Tuple[Tuple[float, float], ...]  # each chunk's (start, end) seconds in the segment


def reference_digest(samples: np.ndarray, rate: int, ref_text: str) -> str:
    """SHA-256 of a reference as the model is given it: samples, rate, transcript."""
    digest = hashlib.sha256(np.ascontiguousarray(samples, dtype=np.float32).tobytes())
    digest.update(f"|{rate}|{ref_text}".encode())
    return digest.hexdigest()


def _digest(*parts) -> bytes:
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False,
                                     separators=(",", ":")).encode()).digest()


def derived_seed(text: str, reference: str, speed: float, duration: Optional[float],
                 language: str) -> int:
    """The seed of a segment that names none: from its own inputs, not the job's,
    so the same script submitted again gives the same audio."""
    digest = _digest("seed", text, reference, float(speed), duration, language)
    return int.from_bytes(digest[:4], "big") & MAX_SEED


def segment_key(spoken: Sequence[str], reference: str, seed: int, speed: float,
                duration: Optional[float], nfe_step: int, cfg_strength: float,
                checkpoint: str, numerics: dict) -> str:
    """The key of a segment's audio: everything that determines its samples."""
    return _digest(KEY_VERSION, list(spoken), reference, seed, float(speed), duration,
                   nfe_step, float(cfg_strength), checkpoint,
                   sorted(numerics.items())).hex()


def load(storage: Storage, key: str) -> Optional[StoredSegment]:
    """A stored segment, or None when it is not (wholly) there."""
    import soundfile

    meta = storage.get_json(keys.segment_meta(key))
    data = storage.get_bytes(keys.segment(key)) if meta else None
    if not meta or data is None:
        return None
    samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=False)
    if len(samples) != meta.get("samples") or rate != meta.get("sample_rate"):
        return None   # a torn or foreign object: generate it again
    return StoredSegment(samples, rate, tuple(tuple(span) for span in meta["chunks"]))


def save(storage: Storage, key: str, segment: StoredSegment) -> None:
    """Audio first, then the JSON that makes it count as stored."""
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, segment.samples, segment.sample_rate, format="WAV",
                    subtype="FLOAT")
    storage.put_bytes(keys.segment(key), buffer.getvalue(), "audio/wav")
    storage.put_json(keys.segment_meta(key), {
        "samples": int(len(segment.samples)), "sample_rate": segment.sample_rate,
        "chunks": [list(span) for span in segment.chunks]})
