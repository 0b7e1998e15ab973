"""Faults that cannot happen on this machine, injected into a real worker process.

A broken CUDA state needs a GPU. Put this folder on PYTHONPATH and set
F5_TEST_FAULT=cuda-on-batch-N: the worker's N-th packed batch then fails the
way a device-side assert does (model_error with refresh_worker), so a test
can watch what a real worker process does about it. Nothing else changes.
"""
import os
import sys
from pathlib import Path

_FAULT = os.environ.get("F5_TEST_FAULT", "")

if _FAULT.startswith("cuda-on-batch-"):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from worker.core.errors import MODEL_ERROR, WorkerError
    from worker.inference import synthesis

    _failing = int(_FAULT.rsplit("-", 1)[1])
    _real = synthesis._run_batch
    _seen = []

    def _run_batch(loaded, plans, steps):
        _seen.append(len(plans))
        if len(_seen) == _failing:
            raise WorkerError(MODEL_ERROR, "the GPU failed (CUDA error: device-side assert "
                              "triggered; injected by tests/faults)", refresh_worker=True)
        return _real(loaded, plans, steps)

    synthesis._run_batch = _run_batch
