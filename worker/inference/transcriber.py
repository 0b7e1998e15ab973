"""The reference transcriber: Whisper (ASR_MODEL) through transformers, loaded
once per model id and device, apart from the TTS model."""
from __future__ import annotations

import logging
import threading

import numpy as np

from settings import Settings
from worker.core.errors import MODEL_ERROR, WorkerError
from worker.inference.models import resolve_device

log = logging.getLogger(__name__)

# (model id, device) -> pipeline: the transcriber's own loaded-model cache.
_PIPELINES: dict = {}
_LOAD_LOCK = threading.Lock()


def transcribe(settings: Settings, samples: np.ndarray, rate: int) -> str:
    """Transcript of a reference clip with ASR_MODEL (Whisper via transformers)."""
    pipe = _asr_pipeline(settings.asr_model, resolve_device(settings.device))
    try:
        audio = {"raw": np.asarray(samples, dtype=np.float32), "sampling_rate": rate}
        text = pipe(audio, chunk_length_s=30, batch_size=16, return_timestamps=False,
                    generate_kwargs={"task": "transcribe"})["text"].strip()
    except Exception as exc:  # noqa: BLE001 - surfaced as the contract's model_error
        log.exception("transcription failed")
        raise WorkerError(MODEL_ERROR, f"the reference could not be transcribed "
                          f"({type(exc).__name__}); pass ref_text") from exc
    if not text:
        raise WorkerError(MODEL_ERROR, "the reference transcribed to nothing; pass ref_text")
    return text


def _asr_pipeline(model_id: str, device: str):
    key = (model_id, device)
    if key not in _PIPELINES:
        with _LOAD_LOCK:
            if key not in _PIPELINES:
                _PIPELINES[key] = _load_asr(model_id, device)
    return _PIPELINES[key]


def _load_asr(model_id: str, device: str):
    import torch
    from transformers import pipeline

    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    try:
        return pipeline("automatic-speech-recognition", model=model_id, dtype=dtype,
                        device=device)
    except Exception as exc:  # noqa: BLE001 - any loading failure is the operator's to fix
        log.exception("ASR model load failed")
        raise WorkerError(MODEL_ERROR, f"ASR_MODEL={model_id} could not be loaded "
                          f"({type(exc).__name__}); pass ref_text or set ASR_MODEL") from exc
