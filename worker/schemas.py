"""One request model per action, with the contract's bounds.

Validation happens before any work. Every violation becomes ``invalid_input``
(or ``payload_too_large`` for the size limits) with a message that names the
field and what would be accepted.
"""
from __future__ import annotations

import re
from typing import Literal, Optional

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from settings import MAX_PRESIGNED_EXPIRY, Settings
from worker.core.errors import INVALID_INPUT, PAYLOAD_TOO_LARGE, UNKNOWN_ACTION, WorkerError
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


def _limit_error(what: str, size: int, limit: int, unit: str) -> PydanticCustomError:
    return PydanticCustomError(
        PAYLOAD_TOO_LARGE, "{what} has {size} {unit}; the limit is {limit}",
        {"what": what, "size": size, "limit": limit, "unit": unit})


def _lower(value):
    return value.lower() if isinstance(value, str) else value


def _blank_to_none(value):
    return (value.strip() or None) if isinstance(value, str) else value


def _pronunciation_table(value):
    return None if value is None else validate_pronunciations(value)


def _strip_wav(value):
    if isinstance(value, str) and value.lower().endswith(".wav"):
        return value[:-4]
    return value


class Request(BaseModel):
    # strict: "1.0" is not a number and "true" is not a boolean; ints still pass as floats.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class TtsRequest(Request):
    text: str
    voice: Optional[str] = Field(None, pattern=VOICE_NAME)
    voice_url: Optional[str] = Field(None, min_length=1, max_length=MAX_URL_CHARS)
    ref_text: Optional[str] = Field(None, max_length=MAX_REF_TEXT_CHARS)
    speed: float = Field(1.0, ge=0.5, le=2.0)
    seed: Optional[int] = Field(None, ge=0, le=MAX_SEED)
    nfe_step: int = Field(32, ge=4, le=64)
    cfg_strength: float = Field(2.0, ge=0, le=10)
    remove_silence: bool = False
    output_format: Literal["wav", "mp3", "flac", "ogg"] = "wav"
    language: Optional[str] = Field(None, pattern=LANGUAGE)
    return_word_timings: bool = False
    timing_method: Literal["whisperx", "google", "auto"] = "whisperx"
    timing_format: Literal["srt", "vtt", "csv", "json", "ass"] = "srt"
    timing_inline: bool = False
    subtitle_cues: Literal["word", "phrase"] = "word"
    normalize: bool = True
    pronunciations: Optional[dict] = None
    loudness: Optional[float] = Field(None, ge=MIN_TARGET_LUFS, le=MAX_TARGET_LUFS)
    subtitle: SubtitleOptions = SubtitleOptions()

    _lower_enums = field_validator("output_format", "timing_method", "timing_format",
                                   "subtitle_cues", mode="before")(_lower)
    _voice = field_validator("voice", mode="before")(_strip_wav)

    @field_validator("text")
    @classmethod
    def _text_bounds(cls, value: str, info: ValidationInfo) -> str:
        value = value.strip()
        if not value:
            raise PydanticCustomError("empty", "must hold at least one non-blank character")
        limit = _settings(info).max_text_chars
        if len(value) > limit:
            raise _limit_error("text", len(value), limit, "characters")
        check_text(value)
        return value

    _pronunciations = field_validator("pronunciations", mode="before")(_pronunciation_table)

    _ref_text = field_validator("ref_text")(_blank_to_none)

    @model_validator(mode="after")
    def _one_reference(self):
        if self.voice and self.voice_url:
            raise PydanticCustomError("conflict", "give either voice or voice_url, not both")
        return self


class UploadRequest(Request):
    voice_name: str = Name
    voice_url: Optional[str] = Field(None, min_length=1, max_length=MAX_URL_CHARS)
    voice_base64: Optional[str] = None
    ref_text: Optional[str] = Field(None, max_length=MAX_REF_TEXT_CHARS)
    language: Optional[str] = Field(None, pattern=LANGUAGE)
    overwrite: bool = False
    pronunciations: Optional[dict] = None

    _name = field_validator("voice_name", mode="before")(_strip_wav)
    _pronunciations = field_validator("pronunciations", mode="before")(_pronunciation_table)

    @field_validator("voice_base64")
    @classmethod
    def _base64_size(cls, value: Optional[str], info: ValidationInfo) -> Optional[str]:
        limit = _settings(info).max_upload_bytes
        # 4 base64 characters carry 3 bytes; refuse before decoding anything.
        if value is not None and len(value) * 3 // 4 > limit:
            raise _limit_error("voice_base64", len(value) * 3 // 4, limit, "bytes")
        return value

    _ref_text = field_validator("ref_text")(_blank_to_none)

    @model_validator(mode="after")
    def _one_source(self):
        if bool(self.voice_url) == bool(self.voice_base64):
            raise PydanticCustomError("source", "give exactly one of voice_url or voice_base64")
        return self


class VoiceRequest(Request):
    voice_name: str = Name

    _name = field_validator("voice_name", mode="before")(_strip_wav)


class EmptyRequest(Request):
    pass


class JobRequest(Request):
    job_id: str = Field(pattern=JOB_ID)


class DownloadRequest(Request):
    job_id: Optional[str] = Field(None, pattern=JOB_ID)
    file: Optional[Literal["audio", "timing"]] = None
    voice_name: Optional[str] = Field(None, pattern=VOICE_NAME)
    expires_in: Optional[int] = Field(None, ge=60, le=MAX_PRESIGNED_EXPIRY)

    _file = field_validator("file", mode="before")(_lower)
    _name = field_validator("voice_name", mode="before")(_strip_wav)

    @model_validator(mode="after")
    def _target(self):
        if bool(self.job_id) == bool(self.voice_name):
            raise PydanticCustomError("target", "give either job_id (with file) or voice_name")
        if self.job_id and not self.file:
            raise PydanticCustomError("target", "file is required with job_id: audio or timing")
        if self.voice_name and self.file:
            raise PydanticCustomError("target", "file goes with job_id, not voice_name")
        return self


SCHEMAS = {
    "tts": TtsRequest,
    "upload": UploadRequest,
    "list_voices": EmptyRequest,
    "delete_voice": VoiceRequest,
    "status": JobRequest,
    "result": JobRequest,
    "download": DownloadRequest,
    "health": EmptyRequest,
}


def _settings(info: ValidationInfo) -> Settings:
    return (info.context or {}).get("settings") or Settings()


def validate(action: str, fields: dict, settings: Settings) -> Request:
    """Validate ``fields`` for ``action``; raise WorkerError naming every problem."""
    model = SCHEMAS[action]
    try:
        return model.model_validate(fields, context={"settings": settings})
    except ValidationError as exc:
        raise _to_worker_error(action, model, exc) from None


def _to_worker_error(action: str, model, exc: ValidationError) -> WorkerError:
    errors = exc.errors(include_url=False)
    code = PAYLOAD_TOO_LARGE if any(e["type"] == PAYLOAD_TOO_LARGE for e in errors) \
        else INVALID_INPUT
    messages = [_describe(action, model, error) for error in errors]
    return WorkerError(code, "; ".join(messages))


def _describe(action: str, model, error: dict) -> str:
    field = ".".join(str(part) for part in error["loc"]) or "input"
    kind = error["type"]
    if kind == "extra_forbidden":
        accepted = ", ".join(sorted(model.model_fields)) or "no fields"
        return f"{field}: unknown field for action {action}; accepted: {accepted}"
    if kind == "missing":
        return f"{field}: required for action {action}"
    message = error["msg"]
    if kind == "string_pattern_mismatch" and field in ("voice", "voice_name"):
        message = "use 1 to 64 of A-Z a-z 0-9 _ -, starting with a letter or digit"
    if field == "input" or kind in ("conflict", "source", "target", PAYLOAD_TOO_LARGE):
        return _first_lower(message)
    return f"{field}: {_first_lower(message)} (got {_shorten(error.get('input'))})"


def _first_lower(text: str) -> str:
    text = re.sub(r"^Value error, ", "", text)
    return text[:1].lower() + text[1:]


def _shorten(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# The earlier worker's field names, per action: alias -> field of this contract.
ALIASES = {
    "tts": {"local_voice": "voice"},
    "upload": {"voice_file_url": "voice_url", "url_file": "voice_url",
               "voice_file": "voice_base64", "file": "voice_base64",
               "reference_text": "ref_text"},
    "download": {"type": "file"},
}


def normalize(raw) -> tuple:
    """Map a job's input (and the earlier worker's shapes) to (action, fields)."""
    if not isinstance(raw, dict):
        raise WorkerError(INVALID_INPUT, "input must be a JSON object")
    fields = dict(raw)
    action = _action(fields.pop("action", None), fields.pop("endpoint", None))
    for alias, name in ALIASES.get(action, {}).items():
        if alias in fields:
            if name in fields:
                raise WorkerError(INVALID_INPUT, f"{alias}: same as {name}; give only one")
            fields[name] = fields.pop(alias)
    voice = fields.get("voice")
    if action == "tts" and isinstance(voice, str) and voice.lower().startswith(("http://", "https://")):
        if "voice_url" in fields:
            raise WorkerError(INVALID_INPUT, "local_voice holds a URL and voice_url is set too; "
                              "give only one")
        fields["voice_url"] = fields.pop("voice")
    return action, fields


def _action(action, endpoint) -> str:
    if action is not None and endpoint is not None and action != endpoint:
        raise WorkerError(INVALID_INPUT, f"action {action!r} and endpoint {endpoint!r} differ; "
                          "give one of them")
    name = action if action is not None else endpoint
    if name is None:
        return "tts"
    if not isinstance(name, str) or name.strip().lower() not in SCHEMAS:
        raise WorkerError(UNKNOWN_ACTION, f"action {_shorten(name)} is not one of: "
                          f"{', '.join(SCHEMAS)}")
    return name.strip().lower()
