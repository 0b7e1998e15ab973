"""The identity of the checkpoint a model was loaded from: its name and the
SHA-256 of its file, which a stored script segment's key includes (the same
text, seed and numerics on other weights is other audio)."""
from __future__ import annotations

import hashlib
import threading

from worker.inference import models

# ModelSpec -> identity: hashing a 1.3 GB checkpoint takes seconds, once per process.
_IDENTITIES: dict = {}
_LOCK = threading.Lock()
BLOCK = 8 * 1024 * 1024


def identity(loaded: models.LoadedModel) -> str:
    """``<model name>:<sha256 of the checkpoint file>``."""
    spec = loaded.spec
    with _LOCK:
        if spec not in _IDENTITIES:
            path = models.checkpoint_path(spec)
            digest = hashlib.sha256()
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(BLOCK), b""):
                    digest.update(block)
            _IDENTITIES[spec] = f"{spec.name}:{digest.hexdigest()}"
        return _IDENTITIES[spec]
