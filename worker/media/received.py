"""Audio a caller sends, by URL or as base64, into a temp file; then decoded.

Both ways are bounded before anything is decoded: a URL by the download cap
(url_fetch), base64 by its length before decoding and its bytes after.
"""
from __future__ import annotations

import base64
import binascii
import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from worker.core.errors import INVALID_INPUT, PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA, WorkerError
from worker.media import audio, url_fetch


def save(url: Optional[str], b64: Optional[str], path: Path, *, url_limit: int,
         b64_limit: int, allow_private: bool, b64_field: str) -> None:
    """The caller's bytes into ``path``, from exactly one of ``url`` and ``b64``."""
    if url:
        url_fetch.fetch_to_file(url, path, url_limit, allow_private)
        return
    try:
        data = base64.b64decode(_strip_data_url(b64), validate=True)
    except (binascii.Error, ValueError):
        raise WorkerError(INVALID_INPUT, f"{b64_field}: not valid base64") from None
    if len(data) > b64_limit:
        raise WorkerError(PAYLOAD_TOO_LARGE, f"{b64_field} decodes to {len(data)} bytes; "
                          f"the limit is {b64_limit}")
    path.write_bytes(data)


@contextlib.contextmanager
def temp_file(prefix: str) -> Iterator[Path]:
    """A temp file for caller bytes, removed however the block ends."""
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=".bin")
    os.close(fd)
    try:
        yield Path(name)
    finally:
        os.unlink(name)


def decode_speech(path: Path, min_seconds: float, max_seconds: float) -> np.ndarray:
    """Mono float32 at audio.SAMPLE_RATE, refused unless it lasts ``min_seconds``
    to ``max_seconds`` and is not silent."""
    info = audio.probe(path)
    if info.duration > max_seconds + 1:
        raise WorkerError(UNSUPPORTED_MEDIA, f"the audio lasts {info.duration:.1f} s; send "
                          f"{min_seconds:g} to {max_seconds:g} s")
    samples = audio.decode(path, info.container, max_seconds + 1)
    seconds = len(samples) / audio.SAMPLE_RATE
    if not min_seconds <= seconds <= max_seconds + 0.05:
        raise WorkerError(UNSUPPORTED_MEDIA, f"the audio lasts {seconds:.2f} s; send "
                          f"{min_seconds:g} to {max_seconds:g} s")
    if not np.isfinite(samples).all() or float(np.abs(samples).max()) < audio.SILENCE_PEAK:
        raise WorkerError(UNSUPPORTED_MEDIA, "the audio is silent; send a recording of speech")
    return samples


def _strip_data_url(value: str) -> str:
    # Browsers hand out "data:audio/wav;base64,...."; accept it as the bytes it holds.
    return value.split(",", 1)[1] if value.startswith("data:") and "," in value else value
