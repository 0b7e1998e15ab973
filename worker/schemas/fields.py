"""What the request models share: the strict base, patterns, bounds, and field groups.

Each group (a reference voice, generation, text, timings) is a small model
the action models inherit, so that `tts`, `script` and `align` bound the same
field the same way.
"""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from settings import Settings
from worker.core.errors import PAYLOAD_TOO_LARGE
from worker.media.loudness import MAX_TARGET_LUFS, MIN_TARGET_LUFS
from worker.text.frontend import check_text
from worker.text.pronunciations import validate_pronunciations
from worker.timing.subtitle_options import SubtitleOptions

VOICE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
JOB_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
LANGUAGE = r"^[a-z]{2,3}([-_][A-Za-z0-9]{2,8})?$"
MAX_REF_TEXT_CHARS = 2000
MAX_URL_CHARS = 2048
MAX_SEED = 2**31 - 1

Name = Field(pattern=VOICE_NAME,
             description="1 to 64 of A-Z a-z 0-9 _ -, starting with a letter or digit")


def limit_error(what: str, size: int, limit: int, unit: str) -> PydanticCustomError:
    return PydanticCustomError(
        PAYLOAD_TOO_LARGE, "{what} has {size} {unit}; the limit is {limit}",
        {"what": what, "size": size, "limit": limit, "unit": unit})


def lower(value):
    return value.lower() if isinstance(value, str) else value


def blank_to_none(value):
    return (value.strip() or None) if isinstance(value, str) else value


def strip_wav(value):
    if isinstance(value, str) and value.lower().endswith(".wav"):
        return value[:-4]
    return value


def pronunciation_table(value):
    return None if value is None else validate_pronunciations(value)


def settings_of(info: ValidationInfo) -> Settings:
    return (info.context or {}).get("settings") or Settings()


def checked_text(value: str, limit: int, what: str = "text",
                 pauses_allowed: bool = True) -> str:
    """A text field: stripped, not blank, within ``limit`` characters, tags well
    formed and something to say (the front end's checks that need no voice)."""
    value = value.strip()
    if not value:
        raise PydanticCustomError("empty", "must hold at least one non-blank character")
    if len(value) > limit:
        raise limit_error(what, len(value), limit, "characters")
    check_text(value, pauses_allowed, what)
    return value


def base64_size(value: Optional[str], limit: int, what: str) -> Optional[str]:
    # 4 base64 characters carry 3 bytes; refuse before decoding anything.
    if value is not None and len(value) * 3 // 4 > limit:
        raise limit_error(what, len(value) * 3 // 4, limit, "bytes")
    return value


def base64_field(name: str):
    """The validator of a base64 audio field: at most MAX_UPLOAD_BYTES decoded."""
    def check(cls, value: Optional[str], info: ValidationInfo) -> Optional[str]:
        return base64_size(value, settings_of(info).max_upload_bytes, name)
    return field_validator(name)(check)


def one_source(url: str, b64: str):
    """The model validator of audio given by URL or as base64: exactly one."""
    def check(self):
        if bool(getattr(self, url)) == bool(getattr(self, b64)):
            raise PydanticCustomError("source", f"give exactly one of {url} or {b64}")
        return self
    return model_validator(mode="after")(check)


class Request(BaseModel):
    # strict: "1.0" is not a number and "true" is not a boolean; ints still pass as floats.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class VoiceFields(Request):
    """The reference voice: a stored voice, a URL, or the default."""
    voice: Optional[str] = Field(None, pattern=VOICE_NAME)
    voice_url: Optional[str] = Field(None, min_length=1, max_length=MAX_URL_CHARS)
    ref_text: Optional[str] = Field(None, max_length=MAX_REF_TEXT_CHARS)

    _voice = field_validator("voice", mode="before")(strip_wav)
    _ref_text = field_validator("ref_text")(blank_to_none)

    @model_validator(mode="after")
    def _one_reference(self):
        if self.voice and self.voice_url:
            raise PydanticCustomError("conflict", "give either voice or voice_url, not both")
        return self


class TextFields(Request):
    """How the text front end reads the text."""
    language: Optional[str] = Field(None, pattern=LANGUAGE)
    normalize: bool = True
    pronunciations: Optional[dict] = None

    _pronunciations = field_validator("pronunciations", mode="before")(pronunciation_table)


class GenerationFields(Request):
    """How speech is generated and written."""
    speed: float = Field(1.0, ge=0.5, le=2.0)
    nfe_step: int = Field(32, ge=4, le=64)
    cfg_strength: float = Field(2.0, ge=0, le=10)
    output_format: Literal["wav", "mp3", "flac", "ogg"] = "wav"
    loudness: Optional[float] = Field(None, ge=MIN_TARGET_LUFS, le=MAX_TARGET_LUFS)

    _lower_format = field_validator("output_format", mode="before")(lower)


class TimingFields(Request):
    """Word timings and the subtitle file."""
    return_word_timings: bool = False
    timing_method: Literal["whisperx", "google", "auto"] = "whisperx"
    timing_format: Literal["srt", "vtt", "csv", "json", "ass"] = "srt"
    timing_inline: bool = False
    subtitle_cues: Literal["word", "phrase"] = "word"
    subtitle: SubtitleOptions = SubtitleOptions()

    _lower_enums = field_validator("timing_method", "timing_format", "subtitle_cues",
                                   mode="before")(lower)
