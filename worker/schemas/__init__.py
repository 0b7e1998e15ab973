"""One request model per action, with the contract's bounds; the action's name
and the earlier worker's field names mapped first.

Validation happens before any work. Every violation becomes ``invalid_input``
(or ``payload_too_large`` for the size limits) with a message that names the
field and what would be accepted.
"""
from __future__ import annotations

import re

from pydantic import ValidationError

from settings import Settings
from worker.core.errors import INVALID_INPUT, PAYLOAD_TOO_LARGE, UNKNOWN_ACTION, WorkerError
from worker.schemas.fields import Request
from worker.schemas.requests import (
    DownloadRequest,
    EmptyRequest,
    JobRequest,
    TtsRequest,
    UploadRequest,
    VoiceRequest,
)
from worker.schemas.script import AlignRequest, ScriptRequest

__all__ = ["ALIASES", "SCHEMAS", "AlignRequest", "DownloadRequest", "ScriptRequest",
           "TtsRequest", "UploadRequest", "normalize", "validate"]

SCHEMAS = {
    "tts": TtsRequest,
    "script": ScriptRequest,
    "align": AlignRequest,
    "upload": UploadRequest,
    "list_voices": EmptyRequest,
    "delete_voice": VoiceRequest,
    "status": JobRequest,
    "result": JobRequest,
    "download": DownloadRequest,
    "health": EmptyRequest,
}


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
    if field == "input" or kind in ("conflict", "source", "target", "segments", PAYLOAD_TOO_LARGE):
        # A rule of the whole request reads alone; one of a segment names the segment.
        nested = len(error["loc"]) > 1
        return f"{field}: {_first_lower(message)}" if nested else _first_lower(message)
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
