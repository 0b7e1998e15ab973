"""The request models of `tts` and of the actions on voices and jobs."""
from __future__ import annotations

import re
from typing import Optional

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from settings import MAX_PRESIGNED_EXPIRY
from worker.schemas.fields import (
    JOB_ID,
    LANGUAGE,
    MAX_REF_TEXT_CHARS,
    MAX_SEED,
    MAX_URL_CHARS,
    VOICE_NAME,
    GenerationFields,
    Name,
    Request,
    TextFields,
    TimingFields,
    VoiceFields,
    base64_field,
    blank_to_none,
    checked_text,
    lower,
    one_source,
    pronunciation_table,
    settings_of,
    strip_wav,
)

# What `download` hands out of a job: its audio, its timing file, or one
# stored segment of a script job.
JOB_FILE = r"^(audio|timing|segment:(0|[1-9][0-9]{0,4}))$"


class TtsRequest(VoiceFields, GenerationFields, TextFields, TimingFields):
    text: str
    seed: Optional[int] = Field(None, ge=0, le=MAX_SEED)
    remove_silence: bool = False
    stream: bool = False

    @field_validator("text")
    @classmethod
    def _text_bounds(cls, value: str, info: ValidationInfo) -> str:
        return checked_text(value, settings_of(info).max_text_chars)

    @field_validator("stream")
    @classmethod
    def _streaming_worker(cls, value: bool, info: ValidationInfo) -> bool:
        if value and not settings_of(info).streaming:
            raise PydanticCustomError(
                "stream", "this worker does not stream: send stream to an endpoint "
                "deployed with STREAMING=true, or leave it out")
        return value

    @model_validator(mode="after")
    def _stream_alone(self):
        if self.stream and (self.loudness is not None or self.remove_silence):
            raise PydanticCustomError(
                "conflict", "stream works on the audio as it is made: not together with "
                "loudness or remove_silence")
        return self


class UploadRequest(Request):
    voice_name: str = Name
    voice_url: Optional[str] = Field(None, min_length=1, max_length=MAX_URL_CHARS)
    voice_base64: Optional[str] = None
    ref_text: Optional[str] = Field(None, max_length=MAX_REF_TEXT_CHARS)
    language: Optional[str] = Field(None, pattern=LANGUAGE)
    overwrite: bool = False
    pronunciations: Optional[dict] = None

    _name = field_validator("voice_name", mode="before")(strip_wav)
    _pronunciations = field_validator("pronunciations", mode="before")(pronunciation_table)
    _ref_text = field_validator("ref_text")(blank_to_none)

    _base64_size = base64_field("voice_base64")
    _one_source = one_source("voice_url", "voice_base64")


class VoiceRequest(Request):
    voice_name: str = Name

    _name = field_validator("voice_name", mode="before")(strip_wav)


class EmptyRequest(Request):
    pass


class JobRequest(Request):
    job_id: str = Field(pattern=JOB_ID)


class DownloadRequest(Request):
    job_id: Optional[str] = Field(None, pattern=JOB_ID)
    file: Optional[str] = None
    voice_name: Optional[str] = Field(None, pattern=VOICE_NAME)
    expires_in: Optional[int] = Field(None, ge=60, le=MAX_PRESIGNED_EXPIRY)

    _file_case = field_validator("file", mode="before")(lower)
    _name = field_validator("voice_name", mode="before")(strip_wav)

    @field_validator("file")
    @classmethod
    def _file(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not re.fullmatch(JOB_FILE, value):
            raise PydanticCustomError("file", "use audio, timing or segment:<index>")
        return value

    @model_validator(mode="after")
    def _target(self):
        if bool(self.job_id) == bool(self.voice_name):
            raise PydanticCustomError("target", "give either job_id (with file) or voice_name")
        if self.job_id and not self.file:
            raise PydanticCustomError("target", "file is required with job_id: audio, timing "
                                      "or segment:<index>")
        if self.voice_name and self.file:
            raise PydanticCustomError("target", "file goes with job_id, not voice_name")
        return self
