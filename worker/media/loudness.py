"""Loudness normalization to a target in LUFS (EBU R128 / ITU-R BS.1770), with a
true-peak ceiling.

Loudness is measured with pyloudnorm (BS.1770-4 K-weighting and gating). True
peak is estimated as BS.1770 describes it: the largest magnitude of the signal
oversampled 4x. Where the gain that reaches the target would push the true
peak over the ceiling, a look-ahead limiter lowers the gain around the peaks
only; that takes some loudness away, so more gain is tried (always applied to
the original samples) until the loudness is on target.

The limiter works on 1 ms blocks (the largest true peak of each), so its
memory stays small next to the audio's, which matters for hour-long scripts.
"""
from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

MIN_TARGET_LUFS, MAX_TARGET_LUFS = -31.0, -12.0
TRUE_PEAK_LIMIT_DBTP = -1.0
# Aim under the limit: other meters' oversampling filters, and PCM-16
# quantisation, read a few tenths of a dB differently (ffmpeg's: +0.2 dB).
CEILING_DBTP = TRUE_PEAK_LIMIT_DBTP - 0.5
TOLERANCE_LU = 0.2            # aim well inside the contract's 1 LU
MAX_PASSES = 8
MIN_SLOPE = 0.05              # LU per dB of gain, at the least, when limiting is heavy
MAX_STEP_DB = 12.0
OVERSAMPLE = 4
BLOCK_S = 0.4                 # BS.1770's gating block
LIMITER_BLOCK_S = 0.001
LOOKAHEAD_S = 0.003           # the gain starts to fall this long before a peak
RELEASE_S = 0.1               # and recovers with this time constant after it
CHUNK_SAMPLES = 1 << 18       # oversampling in pieces: bounded memory
CHUNK_PAD = 64                # input samples of context each side (filter edges)


def normalize_loudness(samples: np.ndarray, rate: int, target_lufs: float) -> np.ndarray:
    """``samples`` (mono) at ``target_lufs`` integrated loudness, true peak at or under
    -1 dBTP; float32, same length. Silence (nothing above BS.1770's -70 LUFS gate)
    comes back unchanged."""
    x = np.nan_to_num(np.asarray(samples, dtype=np.float32).reshape(-1),
                      nan=0.0, posinf=0.0, neginf=0.0)
    loudness = integrated_loudness(x, rate)
    if not np.isfinite(loudness):
        log.info("loudness: the audio is silent; left as it is")
        return x
    block = max(1, int(rate * LIMITER_BLOCK_S))
    # The peaks of x * gain are gain * the peaks of x: measured once, scaled per pass.
    peaks = block_true_peaks(x, block)
    tried, best = [], None      # (gain in dB, loudness reached); (audio, loudness, limited)
    gain_db = target_lufs - loudness
    for _ in range(MAX_PASSES):
        y, limited = _apply_gain(x, peaks, gain_db, block, rate)
        tried.append((gain_db, integrated_loudness(y, rate)))
        if best is None or abs(target_lufs - tried[-1][1]) < abs(target_lufs - best[1]):
            best = (y, tried[-1][1], limited)
        if abs(target_lufs - tried[-1][1]) <= TOLERANCE_LU:
            break
        gain_db = _next_gain(tried, target_lufs)
    y, reached, limited = best
    if abs(target_lufs - reached) > 1.0:
        log.warning("loudness: reached %.1f LUFS for a target of %.1f (the peaks leave "
                    "no more room)", reached, target_lufs)
    # A plain gain keeps the peaks measured above; a limited one is measured again.
    return _under_ceiling(y, block) if limited else y


def integrated_loudness(samples: np.ndarray, rate: int) -> float:
    """BS.1770 integrated loudness in LUFS; ``-inf`` for silence.

    A clip shorter than one 400 ms gating block is measured as if it repeated
    (so its mean square decides), rather than not at all.
    """
    import pyloudnorm

    x = np.asarray(samples).reshape(-1)
    if x.size == 0 or not np.any(x):
        return float("-inf")
    block = int(np.ceil(BLOCK_S * rate)) + 1
    if x.size <= block:
        x = np.tile(x, block // x.size + 1)
    return float(pyloudnorm.Meter(rate).integrated_loudness(x))


def true_peak_dbtp(samples: np.ndarray) -> float:
    """The true peak (4x oversampled) in dBTP; ``-inf`` for silence."""
    peaks = block_true_peaks(np.asarray(samples, dtype=np.float32).reshape(-1), 1 << 12)
    peak = float(peaks.max()) if peaks.size else 0.0
    return 20 * np.log10(peak) if peak > 0 else float("-inf")


def block_true_peaks(x: np.ndarray, block: int) -> np.ndarray:
    """The largest magnitude of the 4x oversampled signal in each block of ``block``
    input samples (the last block may be short)."""
    from scipy.signal import resample_poly

    count = -(-x.size // block)
    peaks = np.empty(count, dtype=np.float32)
    step = max(block, CHUNK_SAMPLES // block * block)
    for start in range(0, x.size, step):
        stop = min(start + step, x.size)
        lo, hi = max(0, start - CHUNK_PAD), min(x.size, stop + CHUNK_PAD)
        # scipy's default filter (81 taps at 4x); shorter ones read peaks low.
        upsampled = np.abs(resample_poly(x[lo:hi], OVERSAMPLE, 1))
        piece = upsampled[(start - lo) * OVERSAMPLE:(stop - lo) * OVERSAMPLE]
        # Oversampled points lie between input samples; the samples count too.
        piece = np.maximum(piece.reshape(-1, OVERSAMPLE).max(axis=1), np.abs(x[start:stop]))
        first = start // block
        padded = np.pad(piece, (0, -piece.size % block))
        peaks[first:first + padded.size // block] = padded.reshape(-1, block).max(axis=1)
    return peaks


def _apply_gain(x: np.ndarray, peaks: np.ndarray, gain_db: float, block: int,
                rate: int) -> np.ndarray:
    """``x`` raised by ``gain_db``, with the gain lowered around the blocks whose true
    peak would then cross the ceiling; and whether it was lowered anywhere."""
    over_db = 20.0 * np.log10(np.maximum(peaks, 1e-12)) + gain_db - CEILING_DBTP
    if over_db.max() <= 0:
        return x * np.float32(_linear(gain_db)), False
    block_gain_db = gain_db - _limiter_curve(np.maximum(over_db, 0.0), rate / block)
    centres = (np.arange(peaks.size) + 0.5) * block
    y = np.empty_like(x)
    for start in range(0, x.size, CHUNK_SAMPLES):
        stop = min(start + CHUNK_SAMPLES, x.size)
        # Linear in dB between block centres: a full-length gain is never held.
        gain = np.interp(np.arange(start, stop), centres, block_gain_db)
        y[start:stop] = x[start:stop] * (10.0 ** (gain / 20.0)).astype(np.float32)
    return y, True


def _limiter_curve(needed_db: np.ndarray, blocks_per_s: float) -> np.ndarray:
    """Gain reduction per block: at least ``needed_db`` in each block and its
    neighbours (so that interpolating between blocks never falls short), ramped in
    linearly over the look-ahead before a peak, decaying exponentially after it."""
    reduction = _sliding_max(needed_db, [(-1, 1.0), (0, 1.0), (1, 1.0)])
    ahead = max(1, round(LOOKAHEAD_S * blocks_per_s))
    reduction = _sliding_max(reduction, [(j, 1.0 - j / (ahead + 1)) for j in range(ahead + 1)])
    release = RELEASE_S * blocks_per_s
    return _sliding_max(reduction, [(-j, float(np.exp(-j / release)))
                                    for j in range(int(3 * release) + 1)])


def _sliding_max(values: np.ndarray, taps: list) -> np.ndarray:
    """out[n] = max over (offset, weight) of weight * values[n + offset] (0 off the ends)."""
    out = np.zeros_like(values)
    for offset, weight in taps:
        if abs(offset) >= values.size:
            continue
        shifted = np.zeros_like(values)
        if offset >= 0:
            shifted[:values.size - offset] = values[offset:]
        else:
            shifted[-offset:] = values[:values.size + offset]
        np.maximum(out, weight * shifted, out=out)
    return out


def _next_gain(tried: list, target_lufs: float) -> float:
    """The next gain to try: where the last two passes' line meets the target.

    Limiting makes loudness grow by less than each dB of gain, so a plain
    "add the shortfall" would creep up on the target over many passes.
    """
    gain_db, reached = tried[-1]
    slope = 1.0
    if len(tried) > 1 and tried[-1][0] != tried[-2][0]:
        slope = (reached - tried[-2][1]) / (gain_db - tried[-2][0])
        slope = min(1.0, max(MIN_SLOPE, slope)) if np.isfinite(slope) else 1.0
    step = (target_lufs - reached) / slope
    return gain_db + float(np.clip(step, -MAX_STEP_DB, MAX_STEP_DB))


def _under_ceiling(y: np.ndarray, block: int) -> np.ndarray:
    # The limiter planned from the peaks before its smooth gain was applied,
    # which moves oversampled peaks a little: measure the result itself.
    peaks = block_true_peaks(y, block)
    peak = float(peaks.max()) if peaks.size else 0.0
    ceiling = _linear(CEILING_DBTP)
    out = y * np.float32(ceiling / peak) if peak > ceiling else y
    return out.astype(np.float32, copy=False)


def _linear(db: float) -> float:
    return float(10.0 ** (db / 20.0))
