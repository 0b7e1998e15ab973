"""Benchmark: jobs per minute with 1, 2 and 4 generating jobs at once, and the latency
of ``status`` while generation runs, all through ``handler.async_handler``.

    .venv/bin/python -m bench.concurrency [--jobs 4] [--rounds 2]
                                          [--out bench/out/concurrency.json]

One asyncio loop, as RunPod's job loop runs the async handler with a
``concurrency_modifier``: each level sends the same ``--jobs`` short ``tts``
jobs (one line each, their own seeds) at once, with
``slots=asyncio.Semaphore(level)``, so level 1 runs them one after another
and level 4 all together (their chunks share the scheduler's batches).
Rounds alternate the order of the levels (1 2 4, then 4 2 1, ...), and each
level's jobs per minute is the median over the rounds; the ratio
4-at-once / one-after-another is taken round by round. While a level runs, a
``status`` job for the oldest unfinished job (the one generating) is sent
every ``--poll`` seconds through the same handler and slots; its latency is
reported per level, beside that of ``status`` on an idle worker. The jobs'
audio is compared across levels: a job's bytes must not depend on the jobs
it ran with.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import time
from pathlib import Path
from typing import Optional

from bench.harness import (
    NFE,
    SEED,
    VOICE,
    WARM_UP_ID,
    CpuLoad,
    add_tiny_option,
    finish,
    log,
    median,
    session,
)
from bench.run import ROOT
from bench.script import LINES

LEVELS = (1, 2, 4)


def audio_digest(out: dict) -> str:
    from s3_utils import get_storage
    from settings import load_settings

    data = get_storage(load_settings()).get_bytes(out["audio_key"])
    return hashlib.sha256(data or b"").hexdigest()


async def timed_status(job_id: str, status_id: str) -> tuple:
    """One ``status`` job through the async handler: (seconds, what it answered)."""
    import handler

    started = time.perf_counter()
    out = await handler.async_handler({"id": status_id,
                                       "input": {"action": "status", "job_id": job_id}})
    answer = out.get("status") or out.get("error", "?").split(":")[0]
    return time.perf_counter() - started, answer


async def poll(bench, ids: list, done: set, every: float) -> list:
    """Status of the oldest unfinished job every ``every`` s until all are done."""
    samples = []
    while True:
        await asyncio.sleep(every)
        running = [job_id for job_id in ids if job_id not in done]
        if not running:
            return samples
        wall, answer = await timed_status(running[0], bench.job_id("status"))
        samples.append({"ms": 1000 * wall, "answer": answer})


async def level_run(bench, level: int, jobs: int, every: float) -> dict:
    import handler

    slots = asyncio.Semaphore(level)
    ids = [bench.job_id(f"conc{level}") for _ in range(jobs)]
    done: set = set()
    outs: dict = {}

    async def one(index: int, job_id: str) -> None:
        fields = {"text": LINES[index], "voice": VOICE, "nfe_step": NFE, "seed": SEED + index}
        outs[index] = await handler.async_handler({"id": job_id, "input": fields}, slots=slots)
        done.add(job_id)

    started = time.perf_counter()
    poller = asyncio.create_task(poll(bench, ids, done, every))
    await asyncio.gather(*(one(index, job_id) for index, job_id in enumerate(ids)))
    wall = time.perf_counter() - started
    statuses = await poller
    failed = [out["error"] for out in outs.values() if "error" in out]
    if failed:
        raise RuntimeError(f"{len(failed)} of the jobs at level {level} failed: {failed[0]}")
    log.info("%d at once: %.1f s for %d jobs, status %s", level, wall, jobs,
             [round(s["ms"], 1) for s in statuses])
    return {"wall_s": wall, "jobs_per_minute": 60 * jobs / wall, "status": statuses,
            "audio": [audio_digest(outs[index]) for index in range(jobs)]}


async def measure(bench, jobs: int, rounds: int, every: float) -> dict:
    idle = [await timed_status(WARM_UP_ID, bench.job_id("status")) for n in range(10)]
    load = CpuLoad()
    runs = {level: [] for level in LEVELS}
    for index in range(rounds):
        for level in (LEVELS if index % 2 == 0 else tuple(reversed(LEVELS))):
            runs[level].append(await level_run(bench, level, jobs, every))
    digests = {tuple(run["audio"]) for level in LEVELS for run in runs[level]}
    return {
        "jobs": jobs, "rounds": rounds, "runs": {str(k): v for k, v in runs.items()},
        "jobs_per_minute": {str(level): median([r["jobs_per_minute"] for r in runs[level]])
                            for level in LEVELS},
        "ratio_4_over_1": median([four["jobs_per_minute"] / one["jobs_per_minute"]
                                  for four, one in zip(runs[4], runs[1])]),
        "status_ms_while_generating": {
            str(level): median([s["ms"] for r in runs[level] for s in r["status"]
                                if s["answer"] == "IN_PROGRESS"]) for level in LEVELS},
        "status_calls_while_generating": sum(
            s["answer"] == "IN_PROGRESS" for level in LEVELS for r in runs[level]
            for s in r["status"]),
        "status_ms_idle": median([1000 * wall for wall, _ in idle]),
        "same_audio_at_every_level": len(digests) == 1,
        "load": load.report(),
    }


def render(results: dict) -> str:
    case = results["case"]
    rates = ", ".join(f"{level} at once {rate:.2f}" for level, rate in
                      case["jobs_per_minute"].items())
    status = ", ".join(f"{level} running {ms:.1f} ms" for level, ms in
                       case["status_ms_while_generating"].items())
    return "\n".join([
        f"{case['jobs']} short tts jobs per level, {case['rounds']} round(s), NFE {NFE}, CPU",
        f"jobs per minute (median): {rates}",
        f"4 at once / one after another: {case['ratio_4_over_1']:.3f} (target >= 1)",
        f"status while generating (median of {case['status_calls_while_generating']}): "
        f"{status}; idle {case['status_ms_idle']:.1f} ms",
        f"same audio bytes at every level: {case['same_audio_at_every_level']}",
        f"load: {case['load']}",
    ])


def main(argv: Optional[list] = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.concurrency",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=4, help="jobs per level (1 to 30)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of every level")
    parser.add_argument("--poll", type=float, default=2.0, help="seconds between status jobs")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/out/concurrency.json")
    add_tiny_option(parser)
    args = parser.parse_args(argv)
    if not 1 <= args.jobs <= len(LINES) or args.rounds < 1 or args.poll <= 0:
        parser.error(f"--jobs takes 1 to {len(LINES)}, --rounds 1 or more, --poll > 0")
    started = time.perf_counter()
    with session("concurrency", args.tiny) as bench:
        results = {"nfe": NFE, "warm_up_s": bench.warm_up()}
        results["case"] = asyncio.run(measure(bench, args.jobs, args.rounds, args.poll))
    return finish(results, started, args.out, render)


if __name__ == "__main__":
    main()
