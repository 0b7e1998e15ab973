"""Loudness normalization, measured by an independent meter: ffmpeg's ebur128
filter (EBU R128 integrated loudness and 4x-oversampled true peak) on the WAV
the worker would write (PCM 16-bit)."""
from __future__ import annotations

import io
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from tests.conftest import ROOT
from worker.media import audio, loudness


def ffmpeg_meter(samples: np.ndarray, rate: int, tmp_path) -> tuple:
    """(integrated loudness in LUFS, true peak in dBTP) as ffmpeg measures them."""
    path = tmp_path / "measured.wav"
    path.write_bytes(audio.encode(samples, rate, "wav"))
    result = subprocess.run(
        [audio.ffmpeg_exe(), "-nostats", "-i", str(path), "-af", "ebur128=peak=true",
         "-f", "null", "-"], capture_output=True, text=True, timeout=60, check=True)
    summary = result.stderr[result.stderr.rindex("Summary:"):]
    integrated = re.search(r"I:\s+(-?[\d.]+|-inf) LUFS", summary).group(1)
    peak = re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary).group(1)
    return float(integrated), float(peak)


@pytest.fixture(scope="module")
def speech(reference_wav):
    samples, rate = soundfile.read(io.BytesIO(reference_wav), dtype="float32")
    return samples, rate


def peaky(samples: np.ndarray, rate: int) -> np.ndarray:
    """Speech with a full-scale click every 200 ms: a crest no gain alone can keep."""
    out = samples * 0.5
    out[::rate // 5] = 0.99
    return out


CASES = {
    # name: (how the input is made, target LUFS)
    "quiet speech up to -23": (lambda x, rate: x * 0.05, -23.0),
    "quiet speech up to -16": (lambda x, rate: x * 0.05, -16.0),
    "loud speech down to -31": (lambda x, rate: x / np.abs(x).max() * 0.99, -31.0),
    "loud speech down to -23": (lambda x, rate: x / np.abs(x).max() * 0.99, -23.0),
    "speech up to -12 needs the limiter": (lambda x, rate: x, -12.0),
    "peaky speech up to -12 needs the limiter": (peaky, -12.0),
    "peaky speech to -18": (peaky, -18.0),
}


@pytest.mark.parametrize("case", list(CASES))
def test_output_meets_target_and_true_peak(speech, tmp_path, case):
    make, target = CASES[case]
    clip, rate = speech
    source = make(clip, rate).astype(np.float32)
    before, peak_before = ffmpeg_meter(source, rate, tmp_path)
    if "limiter" in case:
        # Gain alone would take the true peak over -1 dBTP: the limiter must act.
        assert peak_before + (target - before) > -1.0
    out = loudness.normalize_loudness(source, rate, target)
    assert out.dtype == np.float32 and out.shape == source.shape
    integrated, peak = ffmpeg_meter(out, rate, tmp_path)
    assert abs(integrated - target) <= 1.0, (case, integrated)
    assert peak <= -1.0, (case, peak)
    # Still the same speech: out = gain * source with a positive gain that ramps
    # over milliseconds (a limiter's; a clipper's would jump by many dB at a sample).
    audible = np.abs(source) > 0.01
    gain_db = 20 * np.log10(np.where(audible, out, 1.0) / np.where(audible, source, 1.0))
    assert np.isfinite(gain_db).all()
    step = np.abs(np.diff(gain_db))[audible[:-1] & audible[1:]]
    assert step.max() < 1.0, (case, step.max())   # dB from one sample to the next


def test_silence_and_degenerate_input_never_raise(tmp_path):
    rate = 24000
    assert np.array_equal(loudness.normalize_loudness(np.zeros(rate), rate, -16),
                          np.zeros(rate, dtype=np.float32))
    assert loudness.normalize_loudness(np.zeros(0), rate, -16).shape == (0,)
    dirty = np.sin(np.arange(rate) * 0.05).astype(np.float32) * 0.1
    dirty[::100] = np.nan
    dirty[1::100] = np.inf
    cleaned = loudness.normalize_loudness(dirty, rate, -20)
    assert np.isfinite(cleaned).all()
    for odd in (np.array([0.5]), np.array([1e-9, -1e-9]), np.full(rate, 0.3)):
        out = loudness.normalize_loudness(odd, rate, -20)
        assert np.isfinite(out).all() and out.shape == odd.shape
        assert loudness.true_peak_dbtp(out) <= -1.0 or not np.any(out)


@pytest.mark.parametrize("seconds", [0.05, 0.2, 0.39])
def test_clips_shorter_than_a_gating_block(speech, tmp_path, seconds):
    # ffmpeg cannot gate a clip under 400 ms; repeated, it reads the clip's loudness.
    clip, rate = speech
    piece = clip[rate:rate + int(seconds * rate)]
    out = loudness.normalize_loudness(piece, rate, -20.0)
    integrated, _ = ffmpeg_meter(np.tile(out, 20), rate, tmp_path)
    _, peak = ffmpeg_meter(out, rate, tmp_path)
    assert abs(integrated + 20.0) <= 1.0 and peak <= -1.0


def test_meter_agrees_with_ffmpeg(speech, tmp_path):
    clip, rate = speech
    integrated, peak = ffmpeg_meter(clip, rate, tmp_path)
    assert loudness.integrated_loudness(clip, rate) == pytest.approx(integrated, abs=0.2)
    assert loudness.true_peak_dbtp(clip) == pytest.approx(peak, abs=0.3)
    assert loudness.integrated_loudness(np.zeros(100), rate) == float("-inf")


def test_no_torch_at_import():
    code = "import sys, worker.media.loudness; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)
