"""Golden outputs: the same seed and chunk plan give the same bytes as the code
these hashes were recorded with, on the CPU in fp32.

The hashes were recorded with the engine as it was before the GPU path (one
attention call per packed segment, torchdiffeq's Euler solver, rows over
one-core threads), so a rewrite of the sampler or of the packed forward that
changes a single bit of the audio fails here. The values depend on the
kernels of the machine's instruction set and on the torch version, not on its
core count: on the CPU every kernel runs on one intra-op thread (one row
thread per core), and 1, 2 and 3 row threads gave these same bits (3
intra-op threads on one row did not). So they are kept per ``numerics_key``;
on a machine with no recorded hashes the test is skipped and says how to
record them (``python -m tests.test_golden_numerics`` prints them).
"""
from __future__ import annotations

import hashlib
import json
import sys

import numpy as np
import pytest
import torch

from settings import load_settings
from tests.tiny_models import lively_env
from worker.inference import engine, references, synthesis
from worker.services import voices

LONG_TEXT = " ".join(
    f"Sentence number {word} tells a small story about the sea, the wind and the light."
    for word in ("one", "two", "three", "four", "five", "six"))
SHORT_TEXT = "Hello there, this is a test."
BATCH_TEXTS = ["Hello there, this is a test.",
               "A second and clearly longer chunk of text here.", "Third one."]

# numerics_key() -> case -> SHA-256 of the float32 samples (or of each mel).
GOLDEN = {
    "torch 2.8.0+cu128 AVX2": {
        "generate short nfe4":
            "843bd5c9a032e9cc31c58d158f0773fb5aaaf77f2891e5f288982dbc214ca038",
        "generate long nfe4":
            "156f2a7efbf21d5f1ec872fd758b3907f7d10d6b2e61ceeec891c0efd4299907",
        "generate short nfe7 (EPSS grid)":
            "c9f63780cf6c25b1bfed4bd22b1cc4eaa3c989c62d78622c71b83e88179e182e",
        "sample_batch guided": [
            "0e87d338bd9b0baa483e1da9b438a1dae8ae1261c5499c122b0f5acb81222097",
            "75e63acfca68b4768a794069f06308c4bfc13ca7857f9498248ad7b1bf601d67",
            "2c27681c71dfff65b9ba5785816751ae40480d3c8108debe707704902f197c7b",
        ],
        "sample_batch unguided": [
            "e18d3563aa6440e614dd9de2fc7da0089d4e65098b973345a6d130fdb9348193",
            "6ca2e87dd3d779da621d09458a97dc9e96c080d7eff9353b51a338eeff461e99",
        ],
    },
}


def numerics_key() -> str:
    return f"torch {torch.__version__} {torch.backends.cpu.get_cpu_capability()}"


def digest(values) -> str:
    if isinstance(values, torch.Tensor):
        values = values.detach().float().contiguous().cpu().numpy()
    return hashlib.sha256(np.ascontiguousarray(values, dtype=np.float32).tobytes()).hexdigest()


def cases(loaded) -> dict:
    """Every golden case's hashes, computed now."""
    reference = voices.package_reference()

    def speak(text, seed, nfe):
        return digest(synthesis.generate(loaded, reference.samples, reference.sample_rate,
                                         reference.ref_text, text, seed=seed,
                                         nfe_step=nfe).samples)

    ref_text = references.package_ref_text(reference.ref_text)
    ref = references.prepared_reference(loaded, reference.samples, reference.sample_rate,
                                        ref_text)
    plans = synthesis.plan_chunks(loaded, ref, ref_text, BATCH_TEXTS, 11, 1.0)
    with torch.inference_mode():
        guided = synthesis.sample_batch(loaded, ref, plans, 4, 2.0)
        unguided = synthesis.sample_batch(loaded, ref, plans[:2], 4, 0.0)
    return {
        "generate short nfe4": speak(SHORT_TEXT, 5, 4),
        "generate long nfe4": speak(LONG_TEXT, 5, 4),
        "generate short nfe7 (EPSS grid)": speak(SHORT_TEXT, 8, 7),
        "sample_batch guided": [digest(mel) for mel in guided],
        "sample_batch unguided": [digest(mel) for mel in unguided],
    }


@pytest.fixture(scope="module")
def lively_loaded(tiny_models, tmp_path_factory):
    env = lively_env(tiny_models, tmp_path_factory.mktemp("golden"))
    return engine.get_model(load_settings(env))


@pytest.fixture(scope="module")
def hashes(lively_loaded):
    return cases(lively_loaded)


def test_audio_is_byte_identical_to_the_recorded_golden_outputs(hashes):
    recorded = GOLDEN.get(numerics_key())
    if not recorded:
        pytest.skip(f"no golden hashes recorded for {numerics_key()!r}: record them with "
                    "`python -m tests.test_golden_numerics` on a known-good commit")
    assert hashes == recorded


def test_the_golden_cases_reach_several_chunks_and_differ(hashes):
    """The cases exercise what they claim: a multi-chunk job, and distinct outputs."""
    flat = [value for values in hashes.values()
            for value in (values if isinstance(values, list) else [values])]
    assert len(set(flat)) == len(flat)
    reference = voices.package_reference()
    chunks = synthesis.chunks_for(LONG_TEXT, reference.ref_text,
                                  len(reference.samples) / reference.sample_rate).chunks
    assert len(chunks) >= 3


def _record() -> None:
    import tempfile
    from pathlib import Path

    from tests.tiny_models import tiny_model_env

    with tempfile.TemporaryDirectory() as directory:
        env = lively_env(tiny_model_env(Path(directory)), Path(directory))
        loaded = engine.get_model(load_settings(env))
        sys.stdout.write(json.dumps({numerics_key(): cases(loaded)}, indent=4) + "\n")


if __name__ == "__main__":
    _record()
