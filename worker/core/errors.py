"""The contract's error codes and the one exception type that carries them."""
from __future__ import annotations

INVALID_INPUT = "invalid_input"
UNKNOWN_ACTION = "unknown_action"
NOT_FOUND = "not_found"
CONFLICT = "conflict"
PAYLOAD_TOO_LARGE = "payload_too_large"
UNSUPPORTED_MEDIA = "unsupported_media"
FORBIDDEN_URL = "forbidden_url"
FETCH_FAILED = "fetch_failed"
STORAGE_ERROR = "storage_error"
MODEL_ERROR = "model_error"
JOB_FAILED = "job_failed"
INTERNAL_ERROR = "internal_error"

CODES = frozenset({
    INVALID_INPUT, UNKNOWN_ACTION, NOT_FOUND, CONFLICT, PAYLOAD_TOO_LARGE,
    UNSUPPORTED_MEDIA, FORBIDDEN_URL, FETCH_FAILED, STORAGE_ERROR, MODEL_ERROR,
    JOB_FAILED, INTERNAL_ERROR,
})


class WorkerError(Exception):
    """An error the caller sees as ``<code>: <message>``.

    ``refresh_worker`` asks RunPod to recycle the worker (broken CUDA state);
    ``retryable`` says the same job would succeed if sent again (the worker stopped).
    """

    def __init__(self, code: str, message: str, *, refresh_worker: bool = False,
                 retryable: bool = False):
        if code not in CODES:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.refresh_worker = refresh_worker
        self.retryable = retryable

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def to_response(self) -> dict:
        response = {"error": str(self)}
        if self.refresh_worker:
            response["refresh_worker"] = True
        return response
