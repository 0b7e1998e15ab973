"""GPU check of the packed path (CUDA only; a few minutes): what the CPU tests
cannot reach.

    .venv/bin/python -m bench.gpu_check [--out bench/out/gpu_check.json]

With the tiny models (tests/tiny_models.py, zero-initialised layers made
random), for each DTYPE, eagerly and with CUDA_GRAPHS: the attention backend
load chose, whether a job's bytes repeat with the same seed, how far graphs
move the audio from eager, and how far a chunk batched with other jobs'
chunks lands from the same chunk alone. Prints and writes JSON; changes
nothing. A failure in one configuration is recorded and the rest still run.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.run import LONG_TEXT, ROOT


def check(env: dict, dtype: str, graphs: bool) -> dict:
    import torch

    from settings import load_settings
    from worker.inference import models, references, synthesis
    from worker.services import voices

    settings = load_settings({**env, "DTYPE": dtype, "CUDA_GRAPHS": str(graphs).lower()})
    loaded = models.load(models.model_spec(settings))
    voice = voices.package_reference()

    def speak(seed: int) -> np.ndarray:
        return synthesis.generate(loaded, voice.samples, voice.sample_rate, voice.ref_text,
                                  LONG_TEXT, seed=seed, nfe_step=8).samples

    first, again = speak(5), speak(5)
    ref_text = references.package_ref_text(voice.ref_text)
    ref = references.prepared_reference(loaded, voice.samples, voice.sample_rate, ref_text)
    plans = synthesis.plan_chunks(loaded, ref, ref_text, ["One chunk.", "A second chunk here.",
                                                          "And a third, the longest one."], 3, 1.0)
    plans[1] = dataclasses.replace(plans[1], cfg_strength=0.0)
    with torch.inference_mode():
        together = synthesis.sample_batch(loaded, ref, plans, 8, 2.0)
        alone = [synthesis.sample_batch(loaded, ref, [plan], 8, 2.0)[0] for plan in plans]
    return {"numerics": loaded.numerics(), "samples": first,
            "repeats_bytes": bool(np.array_equal(first, again)),
            "batch_vs_alone_max_diff": max(float((a - b).abs().max())
                                           for a, b in zip(together, alone)),
            "graphs_captured": len(loaded.graphs._graphs) if loaded.graphs else 0}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_check")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/out/gpu_check.json")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from tests.tiny_models import lively_env, tiny_model_env

    results = {}
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as directory:
        env = {**lively_env(tiny_model_env(Path(directory)), Path(directory)), "DEVICE": "cuda"}
        for dtype in ("float16", "bfloat16", "float32"):
            eager = None
            for graphs in (False, True):
                name = f"{dtype}{' graphs' if graphs else ''}"
                try:
                    result = check(env, dtype, graphs)
                except Exception as exc:  # noqa: BLE001 - report and go on
                    results[name] = {"error": f"{type(exc).__name__}: {str(exc)[:500]}"}
                    continue
                samples = result.pop("samples")
                if graphs and eager is not None and len(eager) == len(samples):
                    result["graphs_vs_eager_max_diff"] = float(np.abs(eager - samples).max())
                eager = samples if not graphs else eager
                results[name] = result
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    sys.stdout.write(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
