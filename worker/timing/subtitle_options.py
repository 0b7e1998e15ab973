"""The ``subtitle`` request object: how phrase cues are cut and how ASS looks.

The models are strict pydantic models with the contract's bounds, so the
request schema can take ``SubtitleOptions`` as a field type and report a bad
value with its path (``subtitle.ass.font_size: ...``); ``parse_subtitle``
does the same for callers that hold a raw dict. The cue builder and the
writers read the validated, frozen objects.
"""
from __future__ import annotations

import re
from fractions import Fraction
from types import MappingProxyType
from typing import Annotated, Optional, Tuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from worker.core.errors import INVALID_INPUT, WorkerError

# Broadcast frame rates by the number callers write; the NTSC ones are exact
# fractions, so frame n is at n * 1001 / 30000 s and never drifts.
FRAME_RATES = MappingProxyType({
    23.976: Fraction(24000, 1001), 24.0: Fraction(24), 25.0: Fraction(25),
    29.97: Fraction(30000, 1001), 30.0: Fraction(30), 50.0: Fraction(50),
    59.94: Fraction(60000, 1001), 60.0: Fraction(60),
})
_FPS_TOLERANCE = 0.001  # 23.976023976... and 23.976 name the same rate
COLOUR = r"#[0-9A-Fa-f]{6}"
Side = Annotated[int, Field(ge=100, le=7680)]


def _refuse_unknown(model: type, value):
    if isinstance(value, dict):
        unknown = sorted(repr(key) for key in value if key not in model.model_fields)
        if unknown:
            raise PydanticCustomError(
                "unknown_field", "unknown field {unknown}; accepted: {accepted}",
                {"unknown": ", ".join(unknown), "accepted": ", ".join(sorted(model.model_fields))})
    return value


class _Strict(BaseModel):
    # strict like the request models: "64" is not a number, 1 is not a boolean.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class AssStyle(_Strict):
    """How the ASS file looks; ``play_res`` is the canvas the sizes refer to."""

    play_res: Tuple[Side, Side] = (1920, 1080)
    font: str = Field("Arial", min_length=1, max_length=64)
    font_size: float = Field(64, ge=8, le=400)
    primary_colour: str = "#FFFFFF"
    highlight_colour: str = "#FFD700"
    outline: float = Field(3, ge=0, le=20)
    alignment: int = Field(2, ge=1, le=9)
    margin_v: int = Field(60, ge=0, le=2000)
    karaoke: bool = True

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, value):
        return _refuse_unknown(cls, value)

    @field_validator("play_res", mode="before")
    @classmethod
    def _pair(cls, value):
        # JSON has no tuples: [1920, 1080] arrives as a list.
        return tuple(value) if isinstance(value, list) else value

    @field_validator("primary_colour", "highlight_colour", mode="before")
    @classmethod
    def _colour(cls, value):
        if not isinstance(value, str) or not re.fullmatch(COLOUR, value):
            raise PydanticCustomError("colour", "a colour as #RRGGBB, e.g. #FFD700")
        return value.upper()

    @field_validator("font")
    @classmethod
    def _font_name(cls, value: str) -> str:
        # The Style line is comma-separated: a comma would shift every later field.
        if "," in value or any(not char.isprintable() for char in value):
            raise PydanticCustomError(
                "font_name", "a font name without commas or control characters, e.g. Arial")
        return value


class SubtitleOptions(_Strict):
    """The contract's ``subtitle`` object; defaults follow broadcast practice."""

    max_chars_per_line: int = Field(42, ge=10, le=100)
    max_lines: int = Field(2, ge=1, le=3)
    min_duration: float = Field(0.833, ge=0.2, le=5)
    max_duration: float = Field(7, ge=1, le=20)
    max_cps: float = Field(17, ge=5, le=40)
    max_words: Optional[int] = Field(None, ge=1, le=20)
    fps: Optional[float] = None
    extend_to_next: bool = False
    ass: AssStyle = AssStyle()

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, value):
        return _refuse_unknown(cls, value)

    @field_validator("fps")
    @classmethod
    def _broadcast_rate(cls, value: Optional[float]) -> Optional[float]:
        if value is None:
            return None
        for nominal, exact in FRAME_RATES.items():
            if abs(value - nominal) <= _FPS_TOLERANCE or abs(value - float(exact)) <= 1e-9:
                return nominal
        raise PydanticCustomError("fps", "one of {rates}",
                                  {"rates": ", ".join(f"{rate:g}" for rate in FRAME_RATES)})

    @model_validator(mode="after")
    def _durations_in_order(self):
        if self.min_duration > self.max_duration:
            raise PydanticCustomError(
                "duration_order",
                "min_duration ({low}) is over max_duration ({high}); "
                "give min_duration <= max_duration",
                {"low": f"{self.min_duration:g}", "high": f"{self.max_duration:g}"})
        return self

    @property
    def frame_rate(self) -> Optional[Fraction]:
        """The exact frame rate, or None when times are not snapped to frames."""
        return None if self.fps is None else FRAME_RATES[self.fps]


def parse_subtitle(value) -> SubtitleOptions:
    """``value`` (None, a dict or SubtitleOptions) validated; else
    ``WorkerError(invalid_input, "subtitle.<field>: ...")`` naming every problem."""
    if value is None:
        return SubtitleOptions()
    if isinstance(value, SubtitleOptions):
        return value
    try:
        return SubtitleOptions.model_validate(value)
    except ValidationError as exc:
        problems = [_describe(error) for error in exc.errors(include_url=False)]
        raise WorkerError(INVALID_INPUT, "; ".join(problems)) from None


def _describe(error: dict) -> str:
    path = ".".join(["subtitle", *(str(part) for part in error["loc"])])
    message = error["msg"]
    message = message[:1].lower() + message[1:]
    if error["type"] in ("unknown_field", "duration_order", "fps", "font_name", "colour"):
        return f"{path}: {message}"
    return f"{path}: {message} (got {error.get('input')!r})"
