"""Benchmark: aten operations per job, the worker against ``F5TTS.infer``.

    .venv/bin/python -m bench.ops [--nfe 4] [--out bench/out/ops.json]

On a GPU, eager PyTorch at F5-TTS's sizes is bound by kernel launches, so
the number of operations a job issues predicts its GPU time better than CPU
wall time does. Counted with the PyTorch profiler on the CPU, all threads
(the package runs a long text's chunks in a thread pool), every ``aten::``
event (nested ones included, for both paths alike). The model is the real
22-block ``F5TTS_v1_Base`` layout (its yaml, conv layers, text encoder)
at a tiny width, and a vocos of the real 8 layers at a tiny width, random
weights: the operation count does not depend on the width, and the run takes
seconds. Texts, reference and seed are bench/run.py's; ``short`` is one
chunk, ``long`` six for both paths. The worker is counted twice: as it runs
on the CPU (the packed row cut into one part per core, each part issuing its
own operations) and as one packed row, the layout it runs on CUDA. CPU wall
time (best of ``--repeats``, without the profiler) is reported beside the counts.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

from bench.run import LONG_TEXT, REFERENCE, REFERENCE_TEXT, ROOT, SEED, SHORT_TEXT, chunk_counts

log = logging.getLogger("bench.ops")
TINY_WIDTH = {"dim": 64, "heads": 2, "text_dim": 32, "ff_mult": 2}
VOCOS_TINY = {"dim": 32, "intermediate_dim": 64, "num_layers": 8}


def build(directory: Path) -> dict:
    """The 22-block layout at a tiny width and a tiny 8-layer vocos; the worker's env."""
    import torch
    import yaml
    from f5_tts.model import CFM, DiT
    from f5_tts.model.utils import get_tokenizer
    from omegaconf import OmegaConf
    from safetensors.torch import save_file
    from vocos import Vocos

    from bench.models import VOCOS_CONFIG, package_file

    loaded = OmegaConf.load(str(package_file("configs/F5TTS_v1_Base.yaml")))
    config = {"model": OmegaConf.to_container(loaded.model, resolve=True)}   # not hydra's keys
    config["model"]["arch"].update(TINY_WIDTH)
    config["model"]["name"] = "F5TTS_v1_Base_tiny_width"
    vocab = package_file("infer/examples/vocab.txt")
    vocab_map, vocab_size = get_tokenizer(str(vocab), "custom")
    vocos = json.loads(json.dumps(VOCOS_CONFIG))
    vocos["backbone"]["init_args"].update(VOCOS_TINY)
    vocos["head"]["init_args"]["dim"] = VOCOS_TINY["dim"]
    (directory / "vocos").mkdir(parents=True, exist_ok=True)
    (directory / "vocos/config.yaml").write_text(yaml.safe_dump(vocos, sort_keys=False))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        model = CFM(transformer=DiT(**config["model"]["arch"], text_num_embeds=vocab_size,
                                    mel_dim=config["model"]["mel_spec"]["n_mel_channels"]),
                    mel_spec_kwargs=config["model"]["mel_spec"], vocab_char_map=vocab_map)
        torch.save(Vocos.from_hparams(str(directory / "vocos/config.yaml")).state_dict(),
                   directory / "vocos/pytorch_model.bin")
    save_file({f"ema_model.{k}": v.contiguous() for k, v in model.state_dict().items()},
              str(directory / "model.safetensors"))
    (directory / "model.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return {"F5TTS_MODEL_CONFIG": str(directory / "model.yaml"),
            "F5TTS_CKPT_FILE": str(directory / "model.safetensors"),
            "F5TTS_VOCAB_FILE": str(vocab), "VOCODER_LOCAL_PATH": str(directory / "vocos"),
            "DEVICE": "cpu", "STORAGE_BACKEND": "local",
            "LOCAL_STORAGE_DIR": str(directory / "storage"), "LAZY_INSTALL": "off",
            "FLASH_ATTN_WHEEL_URL": ""}


def official(env: dict):
    """``F5TTS.infer`` on an F5TTS built by its own loaders, with the tiny-width
    yaml (F5TTS() itself takes only the package's config names)."""
    from f5_tts.api import F5TTS
    from f5_tts.infer.utils_infer import load_model, load_vocoder
    from hydra.utils import get_class
    from omegaconf import OmegaConf

    config = OmegaConf.load(env["F5TTS_MODEL_CONFIG"])
    api = F5TTS.__new__(F5TTS)
    api.mel_spec_type = config.model.mel_spec.mel_spec_type
    api.target_sample_rate = config.model.mel_spec.target_sample_rate
    api.ode_method, api.use_ema, api.device = "euler", True, "cpu"
    with _quiet():
        api.vocoder = load_vocoder(api.mel_spec_type, True, env["VOCODER_LOCAL_PATH"], "cpu")
        api.ema_model = load_model(get_class(f"f5_tts.model.{config.model.backbone}"),
                                   config.model.arch, env["F5TTS_CKPT_FILE"],
                                   api.mel_spec_type, env["F5TTS_VOCAB_FILE"], "euler", True,
                                   "cpu")
    from bench.models import package_file

    reference = str(package_file(REFERENCE))

    def run(text: str, nfe: int) -> None:
        with _quiet():
            api.infer(reference, REFERENCE_TEXT, text, nfe_step=nfe, seed=SEED)
    return run


def worker():
    import handler

    count = iter(range(1, 1_000_000))

    def run(text: str, nfe: int) -> None:
        out = handler.handler({"id": f"ops-{next(count)}",
                               "input": {"text": text, "nfe_step": nfe, "seed": SEED}})
        if "error" in out:
            raise RuntimeError(f"worker job failed: {out['error']}")
    return run


@contextlib.contextmanager
def _quiet():
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def count_ops(run, text: str, nfe: int) -> int:
    import torch
    from torch.profiler import ProfilerActivity, profile

    config = torch._C._profiler._ExperimentalConfig(profile_all_threads=True)
    with profile(activities=[ProfilerActivity.CPU], experimental_config=config) as prof:
        run(text, nfe)
    return sum(event.name.startswith("aten::") for event in prof.events())


def wall(run, text: str, nfe: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run(text, nfe)
        best = min(best, time.perf_counter() - started)
    return best


def one_packed_row() -> None:
    """The worker's layout on CUDA: no CPU row threads (bench experiment only)."""
    from settings import load_settings
    from worker.inference import engine

    loaded = engine.get_model(load_settings())
    if loaded.shard_pool is not None:
        loaded.shard_pool.shutdown()
    loaded.shards, loaded.shard_pool = 1, None


def measure(nfe: int, repeats: int) -> dict:
    """Both paths on both texts; the worker as the CPU runs it (rows over one thread
    per core) and as one packed row (the GPU's layout)."""
    with tempfile.TemporaryDirectory(prefix="bench-ops-") as directory:
        env = build(Path(directory))
        os.environ.update(env)
        paths = {"official": official(env), "worker": worker()}
        for run in paths.values():
            run(SHORT_TEXT, nfe)        # warm-up: loads, caches
        results = {name: {"chunks": chunk_counts(text)} for name, text in
                   (("short", SHORT_TEXT), ("long", LONG_TEXT))}
        for label in ("official", "worker", "worker_one_row"):
            if label == "worker_one_row":
                one_packed_row()
            run = paths["official" if label == "official" else "worker"]
            for name, text in (("short", SHORT_TEXT), ("long", LONG_TEXT)):
                results[name][f"{label}_ops"] = count_ops(run, text, nfe)
                results[name][f"{label}_wall_s"] = wall(run, text, nfe, repeats)
                log.info("%s %s: %s", name, label, results[name])
        for case in results.values():
            for label in ("worker", "worker_one_row"):
                case[f"{label}_ratio"] = case[f"{label}_ops"] / case["official_ops"]
    return results


def main(argv: Optional[list] = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.ops", description=__doc__.split("\n")[0])
    parser.add_argument("--nfe", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3, help="wall-time runs per path (best)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/out/ops.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    log.setLevel(logging.INFO)
    sys.path.insert(0, str(ROOT))
    results = {"nfe": args.nfe, "cases": measure(args.nfe, args.repeats)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    lines = [f"{'case':<7}{'path':<16}{'aten ops':>10}{'/ official':>12}{'CPU wall s':>12}"]
    for name, case in results["cases"].items():
        for label in ("official", "worker", "worker_one_row"):
            ratio = case.get(f"{label}_ratio", 1.0)
            lines.append(f"{name:<7}{label:<16}{case[f'{label}_ops']:>10}{ratio:>12.3f}"
                         f"{case[f'{label}_wall_s']:>12.2f}")
    sys.stdout.write("\n".join(lines) + "\n")
    return results


if __name__ == "__main__":
    main()
