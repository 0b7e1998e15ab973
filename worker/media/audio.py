"""Audio from callers: sniff, probe, decode (ffmpeg), validate, clip, encode.

Caller bytes are hostile. The container format is decided from the file's
magic bytes, and ffmpeg is then forced to that demuxer with only the ``file``
protocol allowed, so a playlist or concat file can never make ffmpeg open
other files or URLs. Duration is probed before decoding, and decoding is
capped in time and wall clock, so memory stays bounded.
"""
from __future__ import annotations

import io
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from worker.core.errors import INTERNAL_ERROR, UNSUPPORTED_MEDIA, WorkerError

SAMPLE_RATE = 24000
MIN_SECONDS = 1.0
MAX_SECONDS = 300.0
MAX_REFERENCE_SECONDS = 12.0
PROBE_TIMEOUT = 15
DECODE_TIMEOUT = 60
SILENCE_PEAK = 1e-3

# (magic test, ffmpeg demuxer). Order matters: MP3 frame sync is the loosest.
_SNIFFERS = (
    (lambda h: h[:4] == b"RIFF" and h[8:12] == b"WAVE", "wav"),
    (lambda h: h[:4] == b"fLaC", "flac"),
    (lambda h: h[:4] == b"OggS", "ogg"),
    (lambda h: h[4:8] == b"ftyp", "mov"),  # m4a / mp4 / aac in MP4
    (lambda h: h[:3] == b"ID3", "mp3"),
    (lambda h: len(h) > 1 and h[0] == 0xFF and (h[1] & 0xE0) == 0xE0, "mp3"),
)

# soundfile (format, subtype) per output format.
ENCODINGS = {
    "wav": ("WAV", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "ogg": ("OGG", "VORBIS"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
}


@dataclass(frozen=True)
class Probe:
    container: str
    duration: float


@dataclass(frozen=True)
class Reference:
    samples: np.ndarray       # float32 mono at SAMPLE_RATE
    sample_rate: int
    duration: float
    original_duration: float
    was_cut: bool


def ffmpeg_exe() -> str:
    """The system ffmpeg, else the static binary the imageio-ffmpeg wheel ships."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        raise WorkerError(INTERNAL_ERROR, "ffmpeg is not installed: apt-get install "
                          "ffmpeg or pip install imageio-ffmpeg") from None


def sniff_container(head: bytes) -> Optional[str]:
    for test, container in _SNIFFERS:
        if test(head):
            return container
    return None


def _run_ffmpeg(args: list, timeout: int) -> subprocess.CompletedProcess:
    command = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-protocol_whitelist", "file",
               *args]
    try:
        return subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise WorkerError(UNSUPPORTED_MEDIA, "the audio took too long to decode; "
                          "send a plain wav, mp3, flac, ogg or m4a file") from None


def probe(path: Path) -> Probe:
    """Container and duration, read from the header only."""
    with open(path, "rb") as handle:
        container = sniff_container(handle.read(16))
    if container is None:
        raise WorkerError(UNSUPPORTED_MEDIA, "the bytes are not wav, mp3, flac, ogg or m4a "
                          "audio")
    result = _run_ffmpeg(["-f", container, "-i", str(path)], PROBE_TIMEOUT)
    stderr = result.stderr.decode("utf-8", "replace")
    match = re.search(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)", stderr)
    if not match or "Audio:" not in stderr:
        raise WorkerError(UNSUPPORTED_MEDIA, f"the {container} data holds no readable audio "
                          "stream")
    hours, minutes, seconds = match.groups()
    return Probe(container, int(hours) * 3600 + int(minutes) * 60 + float(seconds))


def decode(path: Path, container: str, max_seconds: float = MAX_SECONDS) -> np.ndarray:
    """Mono float32 at SAMPLE_RATE, at most ``max_seconds`` long."""
    result = _run_ffmpeg(
        ["-v", "error", "-f", container, "-i", str(path), "-t", f"{max_seconds:.3f}",
         "-vn", "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "f32le", "pipe:1"],
        DECODE_TIMEOUT)
    if result.returncode != 0 or not result.stdout:
        detail = result.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no audio"]
        raise WorkerError(UNSUPPORTED_MEDIA, f"the {container} audio does not decode "
                          f"({detail[0][:120]})")
    return np.frombuffer(result.stdout, dtype="<f4").astype(np.float32)


def load_reference(path: Path) -> Reference:
    """Probe, decode and validate caller audio, and clip it to a reference."""
    info = probe(path)
    if info.duration > MAX_SECONDS + 1:
        raise WorkerError(UNSUPPORTED_MEDIA, f"the audio lasts {info.duration:.1f} s; "
                          f"send {MIN_SECONDS:.0f} to {MAX_SECONDS:.0f} s")
    # Decode a little past the limit so an over-long file is refused, not cut.
    samples = decode(path, info.container, MAX_SECONDS + 1)
    original = len(samples) / SAMPLE_RATE
    check_speech(samples, original)
    clipped = clip_at_silence(samples, SAMPLE_RATE, MAX_REFERENCE_SECONDS)
    return Reference(clipped, SAMPLE_RATE, len(clipped) / SAMPLE_RATE, original,
                     was_cut=len(clipped) < len(samples))


def check_speech(samples: np.ndarray, duration: float) -> None:
    if not MIN_SECONDS <= duration <= MAX_SECONDS + 0.05:
        raise WorkerError(UNSUPPORTED_MEDIA, f"the audio lasts {duration:.2f} s; send "
                          f"{MIN_SECONDS:.0f} to {MAX_SECONDS:.0f} s")
    if not np.isfinite(samples).all() or float(np.abs(samples).max()) < SILENCE_PEAK:
        raise WorkerError(UNSUPPORTED_MEDIA, "the audio is silent; send a recording of "
                          "the voice speaking")


def frame_energy(samples: np.ndarray, sample_rate: int, frame_s: float = 0.02) -> np.ndarray:
    """RMS per frame, in dB relative to the loudest frame."""
    size = max(1, int(sample_rate * frame_s))
    count = len(samples) // size
    frames = samples[:count * size].reshape(count, size).astype(np.float64)
    rms = np.sqrt((frames ** 2).mean(axis=1)) + 1e-10
    return 20 * np.log10(rms / rms.max())


def clip_at_silence(samples: np.ndarray, sample_rate: int, max_seconds: float,
                    threshold_db: float = -35.0) -> np.ndarray:
    """Cut to at most ``max_seconds`` at the latest quiet frame, else the quietest."""
    limit = int(max_seconds * sample_rate)
    if len(samples) <= limit:
        return samples
    frame = int(sample_rate * 0.02)
    energy = frame_energy(samples[:limit], sample_rate)
    earliest = int(len(energy) * 0.4)  # keep at least ~5 s of a 12 s reference
    window = energy[earliest:]
    quiet = np.flatnonzero(window < threshold_db)
    best = (quiet[-1] if len(quiet) else int(np.argmin(window))) + earliest
    cut = samples[:best * frame + frame // 2].copy()
    fade = min(len(cut), int(0.01 * sample_rate))
    cut[len(cut) - fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return cut


def encode(samples: np.ndarray, sample_rate: int, output_format: str) -> bytes:
    """Encode float mono samples; deterministic for the same samples."""
    import soundfile

    container, subtype = ENCODINGS[output_format]
    buffer = io.BytesIO()
    soundfile.write(buffer, np.clip(samples, -1.0, 1.0), sample_rate, format=container,
                    subtype=subtype)
    return buffer.getvalue()


def read_wav(data: bytes) -> tuple:
    """Samples and rate of a stored reference (written by this worker, so trusted)."""
    import soundfile

    samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=False)
    if samples.ndim > 1:
        samples = samples.mean(axis=1)
    return samples, rate


def remove_silences(samples: np.ndarray, sample_rate: int, max_pause: float = 0.6,
                    threshold_db: float = -45.0) -> tuple:
    """Shorten pauses longer than ``max_pause`` and trim the edges.

    Returns the samples and a list of (start, end) sample ranges kept, so
    times in the original can be mapped onto the result (``map_time``).
    """
    frame = max(1, int(sample_rate * 0.02))
    loud = frame_energy(samples, sample_rate) >= threshold_db
    if not loud.any():
        return samples, [(0, len(samples))]
    keep_frames = int(max_pause / 0.02)
    kept, quiet_run = [], 0
    first, last = int(np.argmax(loud)), len(loud) - int(np.argmax(loud[::-1]))
    for index in range(first, last):
        quiet_run = 0 if loud[index] else quiet_run + 1
        if quiet_run <= keep_frames:
            kept.append(index)
    ranges = _frame_ranges(kept, frame)
    return np.concatenate([samples[a:b] for a, b in ranges]), ranges


def _frame_ranges(frames: list, frame: int) -> list:
    ranges = []
    for index in frames:
        start = index * frame
        if ranges and ranges[-1][1] == start:
            ranges[-1] = (ranges[-1][0], start + frame)
        else:
            ranges.append((start, start + frame))
    return ranges


def map_time(seconds: float, ranges: list, sample_rate: int) -> float:
    """Where a time of the original audio lands after ``remove_silences``."""
    position, kept = int(seconds * sample_rate), 0
    for start, end in ranges:
        if position < start:
            break
        kept += min(position, end) - start
    return kept / sample_rate
