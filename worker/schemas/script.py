"""The `script` and `align` request models."""
from __future__ import annotations

from typing import List, Optional

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from worker.schemas.fields import (
    LANGUAGE,
    MAX_REF_TEXT_CHARS,
    MAX_SEED,
    MAX_URL_CHARS,
    VOICE_NAME,
    GenerationFields,
    Request,
    TextFields,
    TimingFields,
    VoiceFields,
    base64_field,
    blank_to_none,
    checked_text,
    limit_error,
    one_source,
    settings_of,
    strip_wav,
)
from worker.text.pauses import has_tags

MAX_SEGMENT_SECONDS = 20.0


class Segment(Request):
    """One line of a script; a field left out is the script's."""
    text: str
    voice: Optional[str] = Field(None, pattern=VOICE_NAME)
    voice_url: Optional[str] = Field(None, min_length=1, max_length=MAX_URL_CHARS)
    ref_text: Optional[str] = Field(None, max_length=MAX_REF_TEXT_CHARS)
    speed: Optional[float] = Field(None, ge=0.5, le=2.0)
    language: Optional[str] = Field(None, pattern=LANGUAGE)
    seed: Optional[int] = Field(None, ge=0, le=MAX_SEED)
    pause_after: float = Field(0.4, ge=0, le=10)
    duration: Optional[float] = Field(None, ge=0.5, le=MAX_SEGMENT_SECONDS)

    _voice = field_validator("voice", mode="before")(strip_wav)
    _ref_text = field_validator("ref_text")(blank_to_none)

    @field_validator("text")
    @classmethod
    def _text_bounds(cls, value: str, info: ValidationInfo) -> str:
        return checked_text(value, settings_of(info).max_text_chars)

    @model_validator(mode="after")
    def _consistent(self):
        if self.voice and self.voice_url:
            raise PydanticCustomError("conflict", "give either voice or voice_url, not both")
        if self.duration is not None and has_tags(self.text):
            raise PydanticCustomError(
                "conflict", "a segment with a target duration is one chunk of exactly that "
                "length: no pause tags in it (split it, or use pause_after)")
        return self


class ScriptRequest(VoiceFields, GenerationFields, TextFields, TimingFields):
    segments: List[Segment]
    segment_files: bool = False

    @field_validator("segments", mode="before")
    @classmethod
    def _script_size(cls, value, info: ValidationInfo):
        """Bounds that are cheap to check, before any segment is validated."""
        settings = settings_of(info)
        if isinstance(value, list):
            if not 1 <= len(value) <= settings.max_segments:
                raise PydanticCustomError(
                    "segments", "a script has 1 to {limit} segments, not {count}",
                    {"limit": settings.max_segments, "count": len(value)})
            total = sum(len(item["text"]) for item in value
                        if isinstance(item, dict) and isinstance(item.get("text"), str))
            if total > settings.max_script_chars:
                raise limit_error("the script", total,
                                  settings.max_script_chars, "characters")
        return value


class AlignRequest(TextFields, TimingFields):
    text: str
    audio_url: Optional[str] = Field(None, min_length=1, max_length=MAX_URL_CHARS)
    audio_base64: Optional[str] = None

    @field_validator("text")
    @classmethod
    def _text_bounds(cls, value: str, info: ValidationInfo) -> str:
        return checked_text(value, settings_of(info).max_script_chars, pauses_allowed=False)

    _base64_size = base64_field("audio_base64")
    _one_source = one_source("audio_url", "audio_base64")
