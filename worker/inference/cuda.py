"""CUDA failures as the contract's errors: a broken device asks RunPod for a new worker."""
from __future__ import annotations

import contextlib

from worker.core.errors import MODEL_ERROR, WorkerError


@contextlib.contextmanager
def cuda_guard():
    """Turn a broken CUDA state into model_error with refresh_worker set."""
    import torch

    try:
        yield
    except torch.cuda.OutOfMemoryError as exc:
        torch.cuda.empty_cache()
        raise WorkerError(MODEL_ERROR, "the GPU ran out of memory; try a shorter text",
                          refresh_worker=True) from exc
    except RuntimeError as exc:
        if "CUDA" not in str(exc) and "cuda" not in str(exc):
            raise
        raise WorkerError(MODEL_ERROR, f"the GPU failed ({str(exc)[:120]})",
                          refresh_worker=True) from exc
