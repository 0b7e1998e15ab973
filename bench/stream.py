"""Benchmark: a streamed ``tts`` job, its first part and its total, against the same
job unstreamed.

    .venv/bin/python -m bench.stream [--pairs 1] [--out bench/out/stream.json]

The text has six chunks, as bench/run.py's long case has, but short ones:
six short sentences with a pause tag between them (a pause is always a cut),
so that a run takes about two minutes on two cores instead of ten. The
worker has ``STREAMING=true``; the streamed job is iterated straight from
``handler.stream_handler``, timing the first part that carries audio and
the last element (the job's output); the unstreamed job is the same input
without ``stream`` through ``handler.handler``. Pairs alternate their order
(streamed first, then unstreamed first). Reported, medians over the pairs:
first part / streamed total (the first chunk is generated alone, the other
five batched after it) and streamed total / unstreamed total.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Optional

from bench.harness import (
    NFE,
    SEED,
    VOICE,
    VOICE_TEXT,
    CpuLoad,
    add_tiny_option,
    finish,
    log,
    median,
    session,
    voice_upload,
)
from bench.run import ROOT

SENTENCES = [
    "The old tower stood.", "Its keeper climbed up.", "He polished the lens.",
    "Ships saw the beam.", "Storms came in winter.", "The lamp kept burning.",
]
TEXT = " [pause:0.2s] ".join(SENTENCES)


def chunk_count() -> int:
    """How many chunks the worker makes of TEXT for the bench voice."""
    import base64
    import io

    import soundfile

    from settings import load_settings
    from worker.inference import engine, synthesis

    model = engine.get_model(load_settings())
    clip, rate = soundfile.read(io.BytesIO(base64.b64decode(voice_upload()["voice_base64"])),
                                dtype="float32")
    ref = synthesis.reference(model, clip, rate, VOICE_TEXT)
    return len(synthesis.chunks_for(TEXT, VOICE_TEXT, ref.seconds).chunks)


def job_input(stream: bool) -> dict:
    fields = {"text": TEXT, "voice": VOICE, "nfe_step": NFE, "seed": SEED}
    return {**fields, "stream": True} if stream else fields


def streamed(bench) -> dict:
    """One streamed job: seconds to its first audio part, and to its output."""
    import handler

    job = {"id": bench.job_id("stream"), "input": job_input(True)}
    started = time.perf_counter()
    first, parts, last = None, 0, None
    for element in handler.stream_handler(job):
        if "error" in element:
            raise RuntimeError(f"streamed job failed: {element['error']}")
        if "part" in element:
            parts += 1
            first = first if first is not None else time.perf_counter() - started
        last = element
    total = time.perf_counter() - started
    if first is None or parts < 2:
        raise RuntimeError(f"the stream yielded {parts} parts; expected at least 2")
    return {"first_part_s": first, "total_s": total, "parts": parts,
            "audio_s": last["duration"], "first_over_total": first / total}


def measure(bench, pairs: int) -> dict:
    load = CpuLoad()
    runs = []
    for index in range(pairs):
        order = ("stream", "plain") if index % 2 == 0 else ("plain", "stream")
        run = {}
        for kind in order:
            if kind == "stream":
                run.update(streamed(bench))
            else:
                run["unstreamed_s"] = bench.job(job_input(False)).wall
            log.info("pair %d, %s done: %s", index + 1, kind, run)
        run["streamed_over_unstreamed"] = run["total_s"] / run["unstreamed_s"]
        runs.append(run)
    return {"chunks": chunk_count(), "pairs": runs,
            "first_part_median_s": median([r["first_part_s"] for r in runs]),
            "streamed_median_s": median([r["total_s"] for r in runs]),
            "unstreamed_median_s": median([r["unstreamed_s"] for r in runs]),
            "first_over_total": median([r["first_over_total"] for r in runs]),
            "streamed_over_unstreamed": median([r["streamed_over_unstreamed"] for r in runs]),
            "load": load.report()}


def render(results: dict) -> str:
    case = results["case"]
    return "\n".join([
        f"streamed tts, {case['chunks']} chunks, {case['pairs'][-1]['audio_s']:.1f} s of "
        f"audio, {case['pairs'][-1]['parts']} parts, NFE {NFE}, CPU, "
        f"{len(case['pairs'])} pair(s), medians:",
        f"first part: {case['first_part_median_s']:.1f} s of {case['streamed_median_s']:.1f} s "
        f"({100 * case['first_over_total']:.1f} %; target < 25 %)",
        f"streamed / unstreamed total: {case['streamed_over_unstreamed']:.3f} "
        f"(unstreamed {case['unstreamed_median_s']:.1f} s; target 0.9 to 1.1)",
        f"load: {case['load']}",
    ])


def main(argv: Optional[list] = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.stream",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=1,
                        help="streamed and unstreamed runs, in alternating order")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/out/stream.json")
    add_tiny_option(parser)
    args = parser.parse_args(argv)
    if args.pairs < 1:
        parser.error("--pairs takes 1 or more")
    started = time.perf_counter()
    with session("stream", args.tiny) as bench:
        os.environ["STREAMING"] = "true"
        results = {"nfe": NFE, "text": TEXT, "warm_up_s": bench.warm_up()}
        results["case"] = measure(bench, args.pairs)
    return finish(results, started, args.out, render)


if __name__ == "__main__":
    main()
