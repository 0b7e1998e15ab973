"""The word timing: what every aligner produces and every writer reads.

Times are rounded half up on their decimal value (0.9995 s is 1.000 s, not
0.999 s as binary float rounding would give).
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Optional


def round_time(seconds: float, places: int = 3) -> float:
    """``seconds`` rounded half up to ``places`` decimals (ms by default)."""
    return float(scaled(seconds, places).scaleb(-places))


def scaled(seconds: float, places: int) -> Decimal:
    # repr() gives the shortest decimal that reads back as the same float, so
    # 0.9995 is rounded as the number the caller wrote, not as 0.99949999...
    value = Decimal(repr(float(seconds)))
    if not value.is_finite() or value < 0:
        raise ValueError(f"a timestamp must be a finite number >= 0, got {seconds!r}")
    return value.scaleb(places).quantize(Decimal(1), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class WordTiming:
    word: str
    start_time: float
    end_time: float
    confidence: Optional[float]   # 0..1, or None when the word was not timed

    def to_dict(self) -> dict:
        confidence = None if self.confidence is None else round(float(self.confidence), 3)
        return {"word": self.word, "start_time": round_time(self.start_time),
                "end_time": round_time(self.end_time), "confidence": confidence}
