"""The TTS engine as callers see it: the loaded-model cache (the one piece of
module state the worker keeps) over the parts that load, compile and
synthesize. Loading happens once per process, on the first tts job (or at
start with PRELOAD_MODEL=true)."""
from __future__ import annotations

import threading
import time

from settings import Settings
from worker.inference import compile as compiling
from worker.inference import models, synthesis
from worker.inference.models import LoadedModel

# ModelSpec -> LoadedModel.
_MODELS: dict = {}
_LOAD_LOCK = threading.Lock()


def is_loaded() -> bool:
    return bool(_MODELS)


def numerics(settings: Settings) -> dict:
    """What would produce (or produces) these settings' audio: the loaded model's
    numerics, else the configured ones with ``"loaded": False``."""
    loaded = _MODELS.get(models.model_spec(settings))
    if loaded is None:
        return models.configured_numerics(settings)
    return {**loaded.numerics(), "loaded": True}


def get_model(settings: Settings) -> LoadedModel:
    """The model for these settings, loaded on first use and kept."""
    spec = models.model_spec(settings)
    loaded = _MODELS.get(spec)
    if loaded is not None:
        return loaded
    with _LOAD_LOCK:
        if spec not in _MODELS:
            _MODELS[spec] = _load(spec)
        return _MODELS[spec]


def _load(spec: models.ModelSpec) -> LoadedModel:
    started = time.monotonic()
    loaded = models.load(spec)
    if spec.compile:
        loaded.compiled = compiling.compile_and_warm_up(loaded, synthesis.warm_up)
        loaded.load_seconds = time.monotonic() - started
    return loaded
