"""Where in speech a word boundary may fall: pauses, and dips inside speech.

Numpy only. The audio's loudness in 10 ms frames is split into pauses and
stretches of speech, relative to the recording's own noise floor and speech
level: a frame is speech when it is well over the floor, and a word's fading
edges stay with it while they are still audible; a quiet run of 20 ms or
more is a pause. Every pause is a place a word boundary can be, and so is
every point inside a stretch on a 30 ms grid, each with how deep the
loudness dips there (two words run together usually dip between them). Each
place also carries the speech clock (seconds of speech before it, short
pauses counted as the closures of stops they are) that word lengths are
measured on. How much each of these counts is the
aligner's business.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np
from scipy.ndimage import maximum_filter1d, uniform_filter1d

HOP = 0.01                 # seconds per loudness frame
MIN_PAUSE_FRAMES = 2       # a quiet run this long is a pause; shorter ones are dips
EDGE_DB = 4.0              # a word's edge fades down to this far above the noise floor,
EDGE_REACH_DB = 12.0       # at most this far below the pause threshold,
EDGE_FRAMES = 8            # for at most this many frames
FAINT_DB = 30.0            # a stretch this far below the speech level at its loudest...
FAINT_SECONDS = 0.5        # ...and shorter than this is a breath or a click, not speech
CLOCK_PAUSE = 0.1          # pauses shorter than this count as speech on the clock
GRID_FRAMES = 3            # spacing of boundary places inside a stretch
DIP_REACH_FRAMES = 6       # how far either side a dip is measured against
DIP_CAP_DB = 10.0


@dataclass
class Landmarks:
    """Candidate word boundaries in time order; the first is where speech
    starts and the last where it ends."""
    end_at: np.ndarray     # seconds: where a word ending here ends
    start_at: np.ndarray   # seconds: where the word after it starts
    clock: np.ndarray      # seconds of speech before this place
    pause: np.ndarray      # seconds of pause here (0 inside speech)
    dip: np.ndarray        # dB the loudness dips here (inside speech; 0 at pauses)
    pauses: List[Tuple[float, float]]

    @property
    def speech(self) -> float:
        return float(self.clock[-1])


def loudness_db(audio: np.ndarray, rate: int) -> np.ndarray:
    """dB of each 10 ms frame's RMS (full scale 0 dB)."""
    frame = max(int(round(HOP * rate)), 1)
    count = audio.size // frame
    frames = np.asarray(audio[:count * frame], dtype=np.float32).reshape(count, frame)
    power = np.einsum("ij,ij->i", frames, frames, dtype=np.float64) / frame
    return 10.0 * np.log10(power + 1e-12)


def _levels(db: np.ndarray) -> tuple:
    """The pause threshold (between the noise floor and the speech level,
    never closer than 6 dB to the floor), the level a word's edges may fade
    down to, and the speech level."""
    loud = float(np.percentile(db, 95))
    floor = max(float(np.percentile(db, 5)), loud - 70.0)
    quiet = max(floor + 6.0, min(floor + 0.4 * (loud - floor), loud - 25.0))
    return quiet, max(floor + EDGE_DB, quiet - EDGE_REACH_DB), loud


def _runs(mask: np.ndarray) -> np.ndarray:
    """``(start, end)`` frame index pairs of the runs of True in ``mask``."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return np.stack([np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)], axis=1)


def speech_frames(db: np.ndarray) -> np.ndarray:
    """Which frames are speech: over the pause threshold, grown by up to
    EDGE_FRAMES into fading edges still audible over the floor; stretches too
    faint for words do not count."""
    quiet, audible, loud = _levels(db)
    speech = db >= quiet
    fading = db >= audible
    for _ in range(EDGE_FRAMES):
        speech[1:] |= speech[:-1] & fading[1:]
        speech[:-1] |= speech[1:] & fading[:-1]
    for a, b in _runs(speech):
        if db[a:b].max() < loud - FAINT_DB and (b - a) * HOP < FAINT_SECONDS:
            speech[a:b] = False
    return speech


def _dip_depth(db: np.ndarray) -> np.ndarray:
    """How far each frame lies below the louder frames on both sides of it."""
    smooth = uniform_filter1d(db, 3, mode="nearest")
    reach = DIP_REACH_FRAMES
    left = maximum_filter1d(smooth, reach, origin=(reach - 1) // 2, mode="nearest")
    right = maximum_filter1d(smooth, reach, origin=-(reach // 2), mode="nearest")
    return np.clip(np.minimum(left, right) - smooth, 0.0, DIP_CAP_DB)


def _grid(speech: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Frames inside stretches, one per 30 ms cell at the cell's deepest dip,
    none within two frames of a stretch's edge."""
    inner = speech.copy()
    for shift in (1, 2):
        inner[shift:] &= speech[:-shift]
        inner[:-shift] &= speech[shift:]
    frames = np.flatnonzero(inner)
    if not frames.size:
        return frames
    cells = frames // GRID_FRAMES
    starts = np.flatnonzero(np.diff(np.concatenate(([-1], cells))))
    order = np.lexsort((-depth[frames], cells))  # per cell, deepest first
    return np.sort(frames[order][starts])


def find_landmarks(audio: np.ndarray, rate: int, offset: float = 0.0) -> Optional[Landmarks]:
    """The candidate boundaries of ``audio`` (times shifted by ``offset``), or
    None when nothing in it stands out from its floor."""
    db = loudness_db(audio, rate)
    if db.size < 2 or np.ptp(db) < 6.0:
        return None
    speech = speech_frames(db)
    voiced = np.flatnonzero(speech)
    if not voiced.size:
        return None
    first, last = int(voiced[0]), int(voiced[-1]) + 1
    runs = np.array([(a, b) for a, b in _runs(~speech[first:last]) + first
                     if b - a >= MIN_PAUSE_FRAMES], dtype=int).reshape(-1, 2)
    speech[first:last] = True
    talking = speech.copy()
    for a, b in runs:
        speech[a:b] = False
        # A short pause is a stop's closure, part of the sounds that words' lengths count.
        talking[a:b] = (b - a) * HOP < CLOCK_PAUSE
    clock = np.concatenate(([0], np.cumsum(talking))) * HOP  # clock[f]: before frame f
    depth = _dip_depth(db)
    grid = _grid(speech, depth)
    ends = np.concatenate(([first], grid, runs[:, 0], [last]))
    starts = np.concatenate(([first], grid, runs[:, 1], [last]))
    dips = np.concatenate(([0.0], depth[grid], np.zeros(len(runs)), [0.0]))
    order = np.argsort(ends, kind="stable")
    ends, starts, dips = ends[order], starts[order], dips[order]
    return Landmarks(end_at=offset + ends * HOP, start_at=offset + starts * HOP,
                     clock=clock[ends], pause=(starts - ends) * HOP, dip=dips,
                     pauses=[(offset + a * HOP, offset + b * HOP) for a, b in runs])
