"""What the serving benchmarks (script, stream, concurrency) share.

The worker's environment on the real-size random-weight models of
bench/models.py, on the CPU, with local storage in folders under one temp
directory; a short reference voice uploaded into each folder; a job through
``handler.handler`` timed; medians; and the machine's load while a case ran.

The voice is the first clause of the clip the f5-tts package ships ("Some
call me nature,", the first 2.5 s of ``basic_ref_en.wav``, about 1.7 s of it
speech). Every chunk the model generates carries the reference's frames in
front of its own, so a short reference makes each short line cheap to
generate: that is what lets a 30-line script run twice in minutes on two
cores. It also makes the fixed per-job costs (records, voice lookup,
encoding, storage) weigh more against the compute, so a ratio that holds
here holds with a longer reference.
"""
from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from bench.models import ensure_models, package_file
from bench.run import REFERENCE, ROOT, apply_env, worker_env

log = logging.getLogger("bench")
NFE = 4
SEED = 1234
VOICE = "bench-short"
VOICE_TEXT = "Some call me nature."
WARM_UP_ID = "warm-up"
VOICE_CLIP_S = 2.5           # the clip's first clause ends at 2.0 s; silence follows


def median(values: list) -> float:
    return statistics.median(values) if values else float("nan")


def voice_upload() -> dict:
    """The ``upload`` input of the short voice: the package clip's first clause."""
    import soundfile

    samples, rate = soundfile.read(str(package_file(REFERENCE)), dtype="float32")
    buffer = io.BytesIO()
    soundfile.write(buffer, samples[:int(VOICE_CLIP_S * rate)], rate, format="WAV")
    return {"action": "upload", "voice_name": VOICE, "ref_text": VOICE_TEXT,
            "voice_base64": base64.b64encode(buffer.getvalue()).decode("ascii")}


class CpuLoad:
    """The cores' busy time while a case ran, this process's and everyone else's,
    from /proc/stat and os.times (Linux); the load average at the end."""

    def __init__(self):
        self._start = self._read()

    @staticmethod
    def _read() -> tuple:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        ticks = [int(value) for value in fields]
        idle = ticks[3] + ticks[4]                    # idle + iowait
        own = os.times()
        mine = own.user + own.system + own.children_user + own.children_system
        return time.monotonic(), (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK"), mine

    def report(self) -> dict:
        """Cores busy on average: all work, this process, the rest (others)."""
        end = self._read()
        wall = max(end[0] - self._start[0], 1e-9)
        busy, mine = (end[1] - self._start[1]) / wall, (end[2] - self._start[2]) / wall
        return {"cores": os.cpu_count(), "busy_cores": round(busy, 2),
                "bench_cores": round(mine, 2), "other_cores": round(max(busy - mine, 0.0), 2),
                "loadavg_1m": round(os.getloadavg()[0], 2), "wall_s": round(wall, 1)}


@dataclass
class Timed:
    wall: float
    out: dict


class Bench:
    """The worker in this process on the bench models; storage folders on demand."""

    def __init__(self, root: Path, tiny: bool = False):
        self.root = root
        self._folders = 0
        self._jobs = 0
        if tiny:
            from bench.ops import build

            apply_env({})
            os.environ.update(build(root / "tiny"))
        else:
            apply_env(worker_env(ensure_models(ROOT / "bench/out/models"), "cpu",
                                 root / "unused", False))
        os.environ["STREAMING"] = "false"          # bench/stream.py turns it on
        self._voice = voice_upload()
        self.fresh_storage()

    def fresh_storage(self) -> Path:
        """A new empty storage folder, made current, with the short voice in it."""
        self._folders += 1
        folder = self.root / f"storage-{self._folders}"
        folder.mkdir(parents=True)
        os.environ["LOCAL_STORAGE_DIR"] = str(folder)
        self.job(self._voice)
        return folder

    @staticmethod
    def use(folder: Path) -> None:
        """Make an earlier storage folder current again."""
        os.environ["LOCAL_STORAGE_DIR"] = str(folder)

    def job_id(self, prefix: str) -> str:
        self._jobs += 1
        return f"{prefix}-{self._jobs}"

    def job(self, fields: dict, job_id: Optional[str] = None) -> Timed:
        """One job through ``handler.handler``, timed; an error output raises."""
        import handler

        job = {"id": job_id or self.job_id("bench"), "input": fields}
        started = time.perf_counter()
        out = handler.handler(job)
        wall = time.perf_counter() - started
        if "error" in out:
            raise RuntimeError(f"job {job['id']} failed: {out['error']}")
        return Timed(wall, out)

    def tts(self, text: str, seed: int, job_id: Optional[str] = None) -> Timed:
        return self.job({"text": text, "voice": VOICE, "nfe_step": NFE, "seed": seed}, job_id)

    def warm_up(self) -> float:
        """Load the model and prepare the voice (one short job, ``WARM_UP_ID``); its
        wall time."""
        return self.tts("A warm up line.", SEED, WARM_UP_ID).wall


@contextlib.contextmanager
def session(prefix: str, tiny: bool = False) -> Iterator[Bench]:
    """The bench's logging and a temp root that goes away afterwards. ``tiny``:
    bench/ops.py's tiny-width models, to check that a bench runs (in seconds;
    its times mean nothing)."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory(prefix=f"bench-{prefix}-") as root:
        yield Bench(Path(root), tiny)


def add_tiny_option(parser) -> None:
    parser.add_argument("--tiny", action="store_true",
                        help="smoke run on tiny-width models: checks the bench, times nothing")


def write(results: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))


def finish(results: dict, started: float, out: Path, render) -> dict:
    """The run's elapsed time into ``results``, the JSON to ``out``, the rendered
    summary to stdout."""
    results["elapsed_s"] = time.perf_counter() - started
    write(results, out)
    sys.stdout.write(render(results) + "\n")
    return results
