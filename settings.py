"""Environment -> typed settings. The only module that reads the worker's env.

Every name here is documented in CONFIG.md (a test keeps the two in step).
``load_settings`` is cheap and pure, so callers read it per job rather than
keeping a process-wide copy that tests and operators could not change.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

MAX_PRESIGNED_EXPIRY = 604800
DEFAULT_MAX_UPLOAD_BYTES = 25 * 1024 * 1024


class SettingsError(ValueError):
    """An environment variable holds a value the worker cannot use."""


@dataclass(frozen=True)
class Settings:
    storage_backend: str = "local"
    local_storage_dir: Path = Path("./data")
    s3_bucket: Optional[str] = None
    s3_prefix: str = ""
    aws_endpoint_url: Optional[str] = None
    aws_access_key_id: Optional[str] = field(default=None, repr=False)  # kept out of logs
    aws_secret_access_key: Optional[str] = field(default=None, repr=False)  # kept out of logs
    aws_region: str = "us-east-1"
    s3_addressing_style: str = "auto"
    presigned_url_expiry: int = 3600
    f5tts_model: str = "F5TTS_v1_Base"
    f5tts_model_config: Optional[Path] = None
    f5tts_ckpt_file: Optional[str] = None
    f5tts_vocab_file: Optional[str] = None
    vocoder_local_path: Optional[Path] = None
    asr_model: str = "openai/whisper-large-v3-turbo"
    align_model: Optional[str] = None
    device: str = "auto"
    default_voice: Optional[str] = None
    model_cache_dir: Optional[Path] = None
    enable_s3_model_cache: bool = False
    lazy_install: str = "auto"
    # None: derive the wheel from the platform; "": never install flash-attn.
    flash_attn_wheel_url: Optional[str] = None
    preload_model: bool = False
    torch_compile: bool = False
    dtype: str = "auto"          # auto: float16 on CUDA, float32 on the CPU
    cuda_graphs: bool = False
    google_application_credentials: Optional[str] = None
    google_credentials_json: Optional[str] = field(default=None, repr=False)  # kept out of logs
    google_speech_endpoint: Optional[str] = None
    max_text_chars: int = 5000
    max_chunk_seconds: int = 25
    max_segments: int = 500
    max_script_chars: int = 100_000
    max_align_seconds: int = 1800
    max_align_bytes: int = 200 * 1024 * 1024
    streaming: bool = False
    # None: 1 on the CPU, 4 on a GPU (decided where the device is known).
    max_concurrent_jobs: Optional[int] = None
    job_heartbeat_seconds: int = 30
    job_stale_seconds: int = 120
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    allow_private_urls: bool = False
    log_level: str = "INFO"

    @property
    def uses_s3(self) -> bool:
        return self.storage_backend == "s3"


def _text(env: Mapping[str, str], name: str) -> Optional[str]:
    value = env.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = _text(env, name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name}={value!r}: use true or false")


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    value = _text(env, name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise SettingsError(f"{name}={value!r}: use a whole number") from None
    if not low <= number <= high:
        raise SettingsError(f"{name}={number}: use a value from {low} to {high}")
    return number


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple) -> str:
    value = (_text(env, name) or default).lower()
    if value not in choices:
        raise SettingsError(f"{name}={value!r}: use one of {', '.join(choices)}")
    return value


def _path(env: Mapping[str, str], name: str) -> Optional[Path]:
    value = _text(env, name)
    return Path(value).expanduser() if value else None


def _storage_backend(env: Mapping[str, str]) -> str:
    backend = _choice(env, "STORAGE_BACKEND", "auto", ("auto", "s3", "local"))
    if backend == "auto":
        return "s3" if _text(env, "S3_BUCKET") else "local"
    if backend == "s3" and not _text(env, "S3_BUCKET"):
        raise SettingsError("STORAGE_BACKEND=s3 needs S3_BUCKET")
    return backend


def _storage(env: Mapping[str, str]) -> dict:
    return {
        "storage_backend": _storage_backend(env),
        "local_storage_dir": _path(env, "LOCAL_STORAGE_DIR") or Path("./data"),
        "s3_bucket": _text(env, "S3_BUCKET"),
        "s3_prefix": (_text(env, "S3_PREFIX") or "").strip("/"),
        "aws_endpoint_url": _text(env, "AWS_ENDPOINT_URL"),
        "aws_access_key_id": _text(env, "AWS_ACCESS_KEY_ID"),
        "aws_secret_access_key": _text(env, "AWS_SECRET_ACCESS_KEY"),
        "aws_region": _text(env, "AWS_REGION") or "us-east-1",
        "s3_addressing_style": _choice(env, "S3_ADDRESSING_STYLE", "auto",
                                       ("auto", "path", "virtual")),
        "presigned_url_expiry": _int(env, "PRESIGNED_URL_EXPIRY", 3600, 1,
                                     MAX_PRESIGNED_EXPIRY),
    }


def _models(env: Mapping[str, str]) -> dict:
    return {
        "f5tts_model": _text(env, "F5TTS_MODEL") or "F5TTS_v1_Base",
        "f5tts_model_config": _path(env, "F5TTS_MODEL_CONFIG"),
        "f5tts_ckpt_file": _text(env, "F5TTS_CKPT_FILE"),
        "f5tts_vocab_file": _text(env, "F5TTS_VOCAB_FILE"),
        "vocoder_local_path": _path(env, "VOCODER_LOCAL_PATH"),
        "asr_model": _text(env, "ASR_MODEL") or "openai/whisper-large-v3-turbo",
        "align_model": _text(env, "ALIGN_MODEL"),
        "device": _choice(env, "DEVICE", "auto", ("auto", "cuda", "cpu")),
        "default_voice": _text(env, "DEFAULT_VOICE"),
        "torch_compile": _bool(env, "TORCH_COMPILE", False),
        "dtype": _choice(env, "DTYPE", "auto", ("auto", "float16", "bfloat16", "float32")),
        "cuda_graphs": _bool(env, "CUDA_GRAPHS", False),
    }


def _startup(env: Mapping[str, str]) -> dict:
    return {
        "model_cache_dir": _path(env, "MODEL_CACHE_DIR"),
        "enable_s3_model_cache": _bool(env, "ENABLE_S3_MODEL_CACHE", False),
        "lazy_install": _choice(env, "LAZY_INSTALL", "auto", ("auto", "off")),
        # Unset means "derive"; set but empty means "skip": keep the difference.
        "flash_attn_wheel_url": (env["FLASH_ATTN_WHEEL_URL"].strip()
                                 if "FLASH_ATTN_WHEEL_URL" in env else None),
        "preload_model": _bool(env, "PRELOAD_MODEL", False),
    }


def _limits(env: Mapping[str, str]) -> dict:
    return {
        "google_application_credentials": _text(env, "GOOGLE_APPLICATION_CREDENTIALS"),
        "google_credentials_json": _text(env, "GOOGLE_CREDENTIALS_JSON"),
        "google_speech_endpoint": _text(env, "GOOGLE_SPEECH_ENDPOINT"),
        "max_text_chars": _int(env, "MAX_TEXT_CHARS", 5000, 1, 100_000),
        "max_chunk_seconds": _int(env, "MAX_CHUNK_SECONDS", 25, 15, 30),
        "max_segments": _int(env, "MAX_SEGMENTS", 500, 1, 5000),
        "max_script_chars": _int(env, "MAX_SCRIPT_CHARS", 100_000, 1, 1_000_000),
        "max_align_seconds": _int(env, "MAX_ALIGN_SECONDS", 1800, 1, 4 * 3600),
        "max_align_bytes": _int(env, "MAX_ALIGN_BYTES", 200 * 1024 * 1024, 1024,
                                4 * 1024 * 1024 * 1024),
        "streaming": _bool(env, "STREAMING", False),
        "max_concurrent_jobs": (_int(env, "MAX_CONCURRENT_JOBS", 1, 1, 64)
                                if _text(env, "MAX_CONCURRENT_JOBS") else None),
        "job_heartbeat_seconds": _int(env, "JOB_HEARTBEAT_SECONDS", 30, 1, 30),
        "job_stale_seconds": _int(env, "JOB_STALE_SECONDS", 120, 2, 86_400),
        "max_upload_bytes": _int(env, "MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES,
                                 1024, 1024 * 1024 * 1024),
        "allow_private_urls": _bool(env, "ALLOW_PRIVATE_URLS", False),
        "log_level": _choice(env, "LOG_LEVEL", "INFO",
                             ("debug", "info", "warning", "error")).upper(),
    }


def load_settings(env: Optional[Mapping[str, str]] = None) -> Settings:
    """Read the environment into Settings; raise SettingsError on a bad value."""
    env = os.environ if env is None else env
    values = {**_storage(env), **_models(env), **_startup(env), **_limits(env)}
    return Settings(**values)
