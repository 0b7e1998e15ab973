"""Benchmark: the official F5-TTS path against a ``tts`` job through the worker.

    .venv/bin/python -m bench.run [--device cpu|cuda] [--nfe N] [--repeats K]
                                  [--long-repeats K] [--out bench/out/results.json]

Both paths get the same real-size models (random weights, see bench/models.py),
the same reference (the clip and transcript the f5-tts package ships), text,
``nfe_step`` and seed, in one process, interleaved A B A B after one warm-up
run each. A is ``f5_tts.api.F5TTS(...).infer(...)``; B is ``handler.handler``
with local storage in a temp folder. Ratios are B / A, pair by pair; the table
shows their median. Also measured: ``status`` latency and cold start
(``handler.py --test_input`` in a fresh process); concurrent jobs are
bench/concurrency.py's. Writes the table to stdout and everything to ``--out``
as JSON (after each part, so an interrupted run keeps what it measured).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

from bench.models import MODEL_NAME, ensure_models, package_file

log = logging.getLogger("bench")
ROOT = Path(__file__).resolve().parents[1]
REFERENCE = "infer/examples/basic/basic_ref_en.wav"
REFERENCE_TEXT = "Some call me nature, others call me mother nature."
SEED = 1234
# About 5 s of speech at the reference's pace: one chunk.
SHORT_TEXT = "Every morning the quiet river carries the light to the sea."
# Six sentences without inner commas, each too long to share a chunk with the
# next under either path's chunk size (156 bytes for the worker, 175 for the
# official path, which trims the reference's silent edges first): six chunks.
LONG_TEXT = " ".join([
    "The old lighthouse keeper climbed the long stairs every evening before the sun went down.",
    "He polished the great glass lens until it shone like a second moon above the dark water.",
    "Ships passing far out at sea would see the bright beam and know exactly where the rocks lay.",
    "In the winter the storms came often and the waves reached almost to the top of the old tower.",
    "Still he kept the lamp burning through every night of wind and rain and long bitter cold.",
    "When he finally retired the villagers gathered on the shore to thank him for all his work.",
])


@dataclass
class Run:
    wall: float
    audio_seconds: float
    metrics: dict = field(default_factory=dict)


def median(values: list) -> float:
    return statistics.median(values) if values else float("nan")


def worker_env(models: dict, device: str, storage: Path, compile_model: bool) -> dict:
    """The worker's configuration: package yaml, the built files, local storage."""
    return {"STORAGE_BACKEND": "local", "LOCAL_STORAGE_DIR": str(storage),
            "F5TTS_MODEL": MODEL_NAME, "F5TTS_CKPT_FILE": str(models["ckpt"]),
            "F5TTS_VOCAB_FILE": str(models["vocab"]),
            "VOCODER_LOCAL_PATH": str(models["vocoder"]), "DEVICE": device,
            "LAZY_INSTALL": "off", "FLASH_ATTN_WHEEL_URL": "",
            "TORCH_COMPILE": "true" if compile_model else "false"}


def apply_env(env: dict) -> None:
    for name in ("F5TTS_MODEL_CONFIG", "DEFAULT_VOICE", "S3_BUCKET", "AWS_ENDPOINT_URL",
                 "PRELOAD_MODEL", "LOG_LEVEL"):
        os.environ.pop(name, None)
    os.environ.update(env)


class Official:
    """Path A: the package's API, as its README shows it."""

    def __init__(self, models: dict, device: str):
        from f5_tts.api import F5TTS

        with _quiet():
            self.api = F5TTS(model=MODEL_NAME, ckpt_file=str(models["ckpt"]),
                             vocab_file=str(models["vocab"]),
                             vocoder_local_path=str(models["vocoder"]), device=device)
        self.ref_file = str(package_file(REFERENCE))

    def __call__(self, text: str, nfe: int, seed: int) -> Run:
        started = time.perf_counter()
        with _quiet():
            wav, rate, _ = self.api.infer(self.ref_file, REFERENCE_TEXT, text, nfe_step=nfe,
                                          seed=seed)
        return Run(time.perf_counter() - started, len(wav) / rate)


class Worker:
    """Path B: a tts job through the handler."""

    def __init__(self, prefix: str):
        import handler

        self.handler = handler.handler
        self.prefix = prefix
        self.count = 0

    def __call__(self, text: str, nfe: int, seed: int) -> Run:
        self.count += 1
        job = {"id": f"{self.prefix}-{self.count}",
               "input": {"text": text, "nfe_step": nfe, "seed": seed}}
        started = time.perf_counter()
        out = self.handler(job)
        wall = time.perf_counter() - started
        if "error" in out:
            raise RuntimeError(f"worker job failed: {out['error']}")
        return Run(wall, out["duration"], out["metrics"])

    @property
    def last_job_id(self) -> str:
        return f"{self.prefix}-{self.count}"


@contextlib.contextmanager
def _quiet():
    """The package prints progress and tqdm bars; keep them out of the table."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def chunk_counts(text: str) -> dict:
    """How many chunks each path makes of ``text`` (their size rules differ slightly)."""
    import torchaudio
    from f5_tts.infer.utils_infer import chunk_text, preprocess_ref_audio_text

    from worker.inference import synthesis
    from worker.services import voices

    ref = voices.package_reference()
    worker = synthesis.chunks_for(text, ref.ref_text, len(ref.samples) / ref.sample_rate).chunks
    with _quiet():
        ref_file, ref_text = preprocess_ref_audio_text(str(package_file(REFERENCE)),
                                                       REFERENCE_TEXT)
    audio, rate = torchaudio.load(ref_file)
    seconds = audio.shape[-1] / rate
    max_chars = int(len(ref_text.encode("utf-8")) / seconds * (22 - seconds))
    return {"official": len(chunk_text(text, max_chars=max_chars)), "worker": len(worker)}


def measure_case(name: str, text: str, repeats: int, official: Official, worker: Worker,
                 nfe: int) -> dict:
    pairs = []
    for index in range(repeats):
        a = official(text, nfe, SEED)
        b = worker(text, nfe, SEED)
        overhead = b.wall - b.metrics["inference"]
        pairs.append({"official": asdict(a), "worker": asdict(b), "ratio": b.wall / a.wall,
                      "worker_overhead_s": overhead})
        log.info("%s %d/%d: official %.2f s, worker %.2f s (ratio %.3f, overhead %.3f s)",
                 name, index + 1, repeats, a.wall, b.wall, b.wall / a.wall, overhead)
    a_walls = [p["official"]["wall"] for p in pairs]
    b_walls = [p["worker"]["wall"] for p in pairs]
    overheads = [p["worker_overhead_s"] for p in pairs]
    return {
        "text_chars": len(text), "chunks": chunk_counts(text), "pairs": pairs,
        "official_median_s": median(a_walls), "worker_median_s": median(b_walls),
        "ratio_median": median([p["ratio"] for p in pairs]),
        "official_audio_s": pairs[-1]["official"]["audio_seconds"],
        "worker_audio_s": pairs[-1]["worker"]["audio_seconds"],
        "official_rtf": median(a_walls) / pairs[-1]["official"]["audio_seconds"],
        "worker_rtf": median(b_walls) / pairs[-1]["worker"]["audio_seconds"],
        "worker_overhead_median_s": median(overheads),
        "worker_overhead_share": median([o / w for o, w in zip(overheads, b_walls)]),
        "worker_metrics_median": {
            stage: median([p["worker"]["metrics"][stage] for p in pairs])
            for stage in pairs[0]["worker"]["metrics"]},
    }


def measure_status(job_id: str, count: int) -> dict:
    import handler

    walls = []
    for index in range(count):
        started = time.perf_counter()
        out = handler.handler({"id": f"status-{index}",
                               "input": {"action": "status", "job_id": job_id}})
        walls.append(time.perf_counter() - started)
        if out.get("status") != "COMPLETED":
            raise RuntimeError(f"status of {job_id} answered {out}")
    walls.sort()
    return {"count": count, "median_ms": 1000 * median(walls),
            "p90_ms": 1000 * walls[int(0.9 * (len(walls) - 1))], "max_ms": 1000 * walls[-1]}


def measure_cold_start(env: dict, nfe: int) -> dict:
    """Process start to first result: ``handler.py --test_input``, model files local."""
    job = {"id": "cold-start", "input": {"text": SHORT_TEXT, "nfe_step": nfe, "seed": SEED}}
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as storage:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "handler.py", "--test_input", json.dumps(job)], cwd=ROOT,
            env={**os.environ, **env, "LOCAL_STORAGE_DIR": storage}, capture_output=True,
            text=True, timeout=3600)
        wall = time.perf_counter() - started
    if done.returncode != 0 or "cold-start" not in (done.stdout + done.stderr):
        raise RuntimeError(f"cold start run failed:\n{done.stderr[-3000:]}")
    return {"wall_s": wall, "text": SHORT_TEXT}


def render_table(results: dict) -> str:
    lines = [f"F5-TTS benchmark: {results['device']} ({results['device_name']}), "
             f"NFE {results['nfe']}, torch {results['torch']}, {results['threads']} threads, "
             f"worker TORCH_COMPILE={str(results['worker_torch_compile']).lower()}",
             "",
             f"{'case':<7}{'chunks':>8}{'official s':>12}{'worker s':>10}{'ratio':>8}"
             f"{'audio A/B s':>14}{'RTF A':>8}{'RTF B':>8}{'overhead':>10}"]
    for name, case in results.get("cases", {}).items():
        lines.append(
            f"{name:<7}{case['chunks']['official']:>5}/{case['chunks']['worker']:<2}"
            f"{case['official_median_s']:>12.2f}{case['worker_median_s']:>10.2f}"
            f"{case['ratio_median']:>8.3f}"
            f"{case['official_audio_s']:>7.2f}/{case['worker_audio_s']:<6.2f}"
            f"{case['official_rtf']:>8.3f}{case['worker_rtf']:>8.3f}"
            f"{100 * case['worker_overhead_share']:>9.2f}%")
    if "status" in results:
        status = results["status"]
        lines.append(f"\nstatus: median {status['median_ms']:.2f} ms, p90 "
                     f"{status['p90_ms']:.2f} ms over {status['count']} calls")
    if "cold_start" in results:
        lines.append(f"cold start (handler.py --test_input, short text): "
                     f"{results['cold_start']['wall_s']:.1f} s")
    lines.append("\nratio = worker / official wall time, median of the pairs; overhead = "
                 "worker time outside inference, share of its total")
    return "\n".join(lines)


def _engine_batch_size() -> int:
    from worker.inference import synthesis

    return synthesis.MAX_BATCH_CHUNKS


def write(results: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))


def environment(args) -> dict:
    import torch

    name = torch.cuda.get_device_name() if args.device == "cuda" else (
        platform.processor() or platform.machine())
    if args.device == "cpu" and Path("/proc/cpuinfo").is_file():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    return {"device": args.device, "device_name": name, "torch": torch.__version__,
            "worker_torch_compile": args.compile,
            "threads": torch.get_num_threads(), "nfe": args.nfe, "seed": SEED,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def parse_args(argv: Optional[list] = None):
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--nfe", type=int, default=4, help="nfe_step for both paths (4 to 64)")
    parser.add_argument("--repeats", type=int, default=3, help="A B pairs of the short case")
    parser.add_argument("--long-repeats", type=int, default=2, help="A B pairs of the long case")
    parser.add_argument("--status-calls", type=int, default=50)
    parser.add_argument("--compile", action="store_true",
                        help="the worker with TORCH_COMPILE=true (compiled at load)")
    parser.add_argument("--skip", default="", help="comma list of: short,long,status,cold")
    parser.add_argument("--max-batch-chunks", type=int, default=None,
                        help="experiment: chunks per batch in the worker (1 = one by one)")
    parser.add_argument("--models", type=Path, default=ROOT / "bench/out/models")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/out/results.json")
    return parser.parse_args(argv)


def run_parts(args, results: dict, env: dict, official: Callable, worker: Worker) -> None:
    skip = set(filter(None, args.skip.split(",")))
    for name, text, repeats in (("short", SHORT_TEXT, args.repeats),
                                ("long", LONG_TEXT, args.long_repeats)):
        if name not in skip and repeats > 0:
            results["cases"][name] = measure_case(name, text, repeats, official, worker,
                                                  args.nfe)
            write(results, args.out)
    if "status" not in skip:
        results["status"] = measure_status(worker.last_job_id, args.status_calls)
    if "cold" not in skip:
        results["cold_start"] = measure_cold_start(env, args.nfe)


def main(argv: Optional[list] = None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)
    sys.path.insert(0, str(ROOT))
    started = time.perf_counter()
    models = ensure_models(args.models)
    results = {**environment(args), "models": {"f5_params": models["params"]["f5"],
                                               "vocos_params": models["params"]["vocos"]},
               "cases": {}}
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as storage:
        env = worker_env(models, args.device, Path(storage), args.compile)
        apply_env(env)
        official, worker = Official(models, args.device), Worker("bench")
        if args.max_batch_chunks:
            from worker.inference import synthesis
            synthesis.MAX_BATCH_CHUNKS = args.max_batch_chunks  # experiment only
        results["max_batch_chunks"] = _engine_batch_size()
        log.info("warm-up: one run of each path (loads the worker's model)")
        official(SHORT_TEXT, args.nfe, SEED)
        results["worker_model_load_s"] = worker(SHORT_TEXT, args.nfe, SEED).metrics["model_load"]
        run_parts(args, results, env, official, worker)
    results["elapsed_s"] = time.perf_counter() - started
    write(results, args.out)
    sys.stdout.write(render_table(results) + "\n")
    return results


if __name__ == "__main__":
    main()
