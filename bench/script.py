"""Benchmark: a 30-line ``script`` job against the same lines as separate ``tts`` jobs.

    .venv/bin/python -m bench.script [--segments 30] [--resubmits 3]
                                     [--out bench/out/script.json]

The lines are short (one to two seconds of speech each), every one with its
own seed, and the separate jobs get the same text, voice and seed. The
separate jobs run in two halves, before and after the script's first run, so
that a slow phase of the shared machine falls on both sides. The script's
first run has a storage folder of its own (the segment store starts empty).
Then the script is sent again ``--resubmits`` times, each with one line
changed from the original (a different line each time), into the same
folder: only that line is generated, the others come from the store.
Reported: script / separate (the sum of the separate jobs' wall times), the
same against 30 times their median, and resubmit / first run (median).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Optional

from bench.harness import (
    NFE,
    SEED,
    VOICE,
    CpuLoad,
    Timed,
    add_tiny_option,
    finish,
    log,
    median,
    session,
)
from bench.run import ROOT

# A short scene: one chunk each, one to two seconds of speech each.
LINES = [
    "The door opened slowly.", "Nobody was there.", "She stepped inside.",
    "The hall was cold.", "A clock ticked somewhere.", "Rain tapped the windows.",
    "She called his name.", "No answer came.", "The stairs creaked.",
    "A light burned upstairs.", "She climbed toward it.", "The air smelled of smoke.",
    "A chair lay on its side.", "Papers covered the floor.", "She picked one up.",
    "It was a map.", "Someone had marked a river.", "And a small red cross.",
    "She folded it away.", "Footsteps sounded below.", "She held her breath.",
    "The steps came closer.", "Then they stopped.", "A voice said hello.",
    "She knew that voice.", "It was her brother.", "He had come home.",
    "They sat by the fire.", "Neither said a word.", "Morning came at last.",
]


def script_input(lines: list) -> dict:
    segments = [{"text": text, "seed": SEED + index} for index, text in enumerate(lines)]
    return {"action": "script", "segments": segments, "voice": VOICE, "nfe_step": NFE}


def changed(lines: list, index: int) -> list:
    """The lines with line ``index`` said differently (so its segment key changes)."""
    edited = list(lines)
    edited[index] = edited[index].rstrip(".") + " again."
    return edited


def check_reuse(timed: Timed, expected_new: int) -> None:
    """A benchmark of reuse is void if the wrong number of segments was generated."""
    new = sum(not segment["reused"] for segment in timed.out["segments"])
    if new != expected_new:
        raise RuntimeError(f"expected {expected_new} generated segments, the job generated {new}")


def separate(bench, lines: list, indices: range) -> list:
    walls = []
    for index in indices:
        walls.append(bench.tts(lines[index], SEED + index).wall)
        log.info("separate tts %d: %.2f s", index, walls[-1])
    return walls


def measure(bench, count: int, resubmits: int) -> dict:
    lines = LINES[:count]
    separate_folder = bench.fresh_storage()
    load = CpuLoad()
    half = count // 2
    walls = separate(bench, lines, range(half))
    script_folder = bench.fresh_storage()
    first = bench.job(script_input(lines))
    check_reuse(first, count)
    log.info("script, first run: %.2f s", first.wall)
    bench.use(separate_folder)
    walls += separate(bench, lines, range(half, count))
    bench.use(script_folder)
    again = []
    for n in range(resubmits):
        index = (n + 1) * count // (resubmits + 1)
        timed = bench.job(script_input(changed(lines, index)))
        check_reuse(timed, 1)
        again.append(timed.wall)
        log.info("script, line %d changed: %.2f s", index, timed.wall)
    return {
        "segments": count, "audio_s": first.out["duration"],
        "segment_seconds": [segment["duration"] for segment in first.out["segments"]],
        "separate_walls_s": walls, "separate_total_s": sum(walls),
        "separate_median_s": median(walls), "script_first_s": first.wall,
        "script_metrics": first.out["metrics"], "resubmit_walls_s": again,
        "ratio_script_over_separate": first.wall / sum(walls),
        "ratio_script_over_median_times_n": first.wall / (count * median(walls)),
        "ratio_resubmit_over_first": median(again) / first.wall,
        "load": load.report(),
    }


def render(results: dict) -> str:
    case = results["case"]
    return "\n".join([
        f"script of {case['segments']} lines ({case['audio_s']:.1f} s of audio), NFE {NFE}, CPU",
        f"separate tts jobs: {case['separate_total_s']:.1f} s in all "
        f"(median {case['separate_median_s']:.2f} s each)",
        f"script, first run: {case['script_first_s']:.1f} s",
        f"script / separate: {case['ratio_script_over_separate']:.3f} "
        f"(against {case['segments']} x the median: "
        f"{case['ratio_script_over_median_times_n']:.3f}; target <= 0.9)",
        f"resubmit, one line changed: median {median(case['resubmit_walls_s']):.2f} s, "
        f"{case['ratio_resubmit_over_first']:.4f} of the first run (target < 0.05)",
        f"load: {case['load']}",
    ])


def main(argv: Optional[list] = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.script",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--segments", type=int, default=len(LINES),
                        help=f"lines of the script (1 to {len(LINES)})")
    parser.add_argument("--resubmits", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/out/script.json")
    add_tiny_option(parser)
    args = parser.parse_args(argv)
    if not 1 <= args.segments <= len(LINES) or args.resubmits < 1:
        parser.error(f"--segments takes 1 to {len(LINES)}, --resubmits at least 1")
    started = time.perf_counter()
    with session("script", args.tiny) as bench:
        results = {"nfe": NFE, "warm_up_s": bench.warm_up()}
        results["case"] = measure(bench, args.segments, args.resubmits)
    return finish(results, started, args.out, render)


if __name__ == "__main__":
    main()
