"""Concurrent uploads of one voice from several processes, through the real handler.

Every upload carries its take number twice: in its ``ref_text`` and
``pronunciations`` (voice.json) and in its audio (the package clip scaled to a
peak of its own). A reader process polls ``voices.load`` while the uploads
race; a pair whose audio and transcript came from different uploads shows two
different numbers.

The processes are started with ``spawn``: each has its own storage client, as
separate workers do.
"""
from __future__ import annotations

import io
import multiprocessing
import os
import queue
import re
import threading
import time

import numpy as np
import pytest
import soundfile

from s3_utils import S3Storage

PROCESSES = 4
FIRST_PEAK, PEAK_STEP = 0.2, 0.12   # take i peaks at 0.2 + 0.12 i
TIMEOUT_S = 120


class IgnoresIfAbsent(S3Storage):
    """A store without conditional writes, simulated: ``if_absent`` is dropped, so
    IfNoneMatch is never sent and every write lands, as on stores that ignore it."""

    def put_bytes(self, key, data, content_type=None, if_absent=False):
        super().put_bytes(key, data, content_type)
        return True


class AudioBarrier:
    """A storage whose writes of upload audio wait until every uploader has written
    its own. All uploads then pass their checks before any of them points the name
    at its audio: the window in which a check-then-write scheme goes wrong is
    shared by all of them every round, not only when the scheduler lines them up."""

    def __init__(self, inner, barrier):
        self.inner, self.barrier = inner, barrier

    def put_bytes(self, key, data, content_type=None, if_absent=False):
        written = self.inner.put_bytes(key, data, content_type, if_absent)
        if "/uploads/" in key:
            self.barrier.wait(timeout=TIMEOUT_S)
        return written

    def __getattr__(self, name):
        return getattr(self.inner, name)


def _storage(env: dict, plain: bool):
    from s3_utils import get_storage
    from settings import load_settings

    settings = load_settings(env)
    return IgnoresIfAbsent(settings) if plain else get_storage(settings)


def take_payload(clip: np.ndarray, rate: int, take: int, name: str, overwrite: bool) -> dict:
    import base64

    samples = clip / np.abs(clip).max() * (FIRST_PEAK + PEAK_STEP * take)
    buffer = io.BytesIO()
    soundfile.write(buffer, samples.astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return {"action": "upload", "voice_name": name, "overwrite": overwrite,
            "ref_text": f"this is take {take}", "pronunciations": {"take": f"take{take}"},
            "voice_base64": base64.b64encode(buffer.getvalue()).decode()}


def take_of_audio(samples: np.ndarray):
    peak = float(np.abs(samples).max())
    take = round((peak - FIRST_PEAK) / PEAK_STEP)
    return take if abs(FIRST_PEAK + PEAK_STEP * take - peak) < 0.01 else f"peak {peak:.3f}"


def take_of_voice(voice) -> tuple:
    """(take of the audio, take of ref_text, take of pronunciations)."""
    text = re.fullmatch(r"this is take (\d+)", voice.ref_text or "")
    said = re.fullmatch(r"take(\d+)", voice.pronunciations.get("take", ""))
    return (take_of_audio(voice.samples), int(text.group(1)) if text else voice.ref_text,
            int(said.group(1)) if said else voice.pronunciations)


def _uploader(env: dict, plain: bool, payloads: list, barriers: tuple, results) -> None:
    os.environ.update(env)
    import handler

    start, barrier, written = barriers
    # This process's handler runs on the store of the test (see AudioBarrier).
    storage = AudioBarrier(_storage(env, plain), written)
    handler.get_storage = lambda settings: storage
    # Imports and the storage client are ready before anyone starts.
    handler.handler({"id": f"warm-{os.getpid()}", "input": {"action": "list_voices"}})
    start.wait(timeout=TIMEOUT_S)
    for round_, payload in enumerate(payloads):
        barrier.wait(timeout=TIMEOUT_S)
        out = handler.handler({"id": f"race-{os.getpid()}-{round_}", "input": payload})
        results.put((round_, payload["ref_text"], out))


def _reader(env: dict, plain: bool, names: list, start, stop, results) -> None:
    from worker.core.errors import NOT_FOUND, WorkerError
    from worker.services import voices

    storage = _storage(env, plain)
    seen, takes, problems = 0, set(), []
    start.wait(timeout=TIMEOUT_S)
    while not stop.is_set():
        for name in names:
            try:
                voice = voices.load(storage, name)
            except WorkerError as exc:
                if exc.code != NOT_FOUND:
                    problems.append(str(exc))
                continue
            seen += 1
            found = take_of_voice(voice)
            takes.add(found[0])
            if len(set(found)) != 1:
                problems.append(f"{name}: audio, ref_text, pronunciations of takes {found}")
        time.sleep(0.005)   # leave the CPUs to the uploaders now and then
    results.put((seen, sorted(takes, key=str), problems[:10]))


def race(env: dict, plain: bool, payloads: list, names: list) -> tuple:
    """Run PROCESSES uploaders (payloads[i] is process i's list, one per round) and
    one reader; returns ({round: [(ref_text, output)]}, reader's (seen, takes, problems))."""
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(len(payloads) + 1)
    barriers = (start, ctx.Barrier(len(payloads)), ctx.Barrier(len(payloads)))
    results, reads, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    reader = ctx.Process(target=_reader, args=(env, plain, names, start, stop, reads))
    uploaders = [ctx.Process(target=_uploader, args=(env, plain, mine, barriers, results))
                 for mine in payloads]
    for process in [reader, *uploaders]:
        process.start()
    outcomes = {}
    try:
        for _ in range(sum(len(mine) for mine in payloads)):
            round_, ref_text, out = results.get(timeout=TIMEOUT_S)
            outcomes.setdefault(round_, []).append((ref_text, out))
    finally:
        stop.set()
        for process in uploaders:
            process.join(TIMEOUT_S)
        try:
            read = reads.get(timeout=TIMEOUT_S)
        except queue.Empty:
            read = (0, [], ["the reader process reported nothing"])
        reader.join(TIMEOUT_S)
    return outcomes, read


@pytest.fixture
def atomic_moto(monkeypatch):
    """moto checks If-None-Match and then writes, with no lock between the two, so two
    concurrent conditional PUTs can both pass its check; real S3 decides atomically.
    A lock around moto's PUT handler gives the test server that atomicity."""
    from moto.s3.responses import S3Response

    lock, original = threading.Lock(), S3Response.put_object

    def put_object(self, *args, **kwargs):
        with lock:
            return original(self, *args, **kwargs)

    monkeypatch.setattr(S3Response, "put_object", put_object)


@pytest.fixture
def clip(reference_wav):
    # The first 1.5 s of real speech: short, so that many uploads fit in a test.
    samples, rate = soundfile.read(io.BytesIO(reference_wav), dtype="float32")
    return samples[:int(1.5 * rate)], rate


def _check_exactly_one_wins(storage, outcomes: dict) -> None:
    from worker.services import voices

    for round_, answers in sorted(outcomes.items()):
        winners = [text for text, out in answers if "error" not in out]
        losers = [out["error"] for _, out in answers if "error" in out]
        assert len(winners) == 1, (round_, answers)
        assert len(losers) == PROCESSES - 1 and all(
            error.startswith("conflict:") for error in losers), losers
        name = f"race{round_}"
        voice = voices.load(storage, name)
        assert voice.ref_text == winners[0]
        assert len(set(take_of_voice(voice))) == 1
        # The losers left nothing: one voice.json, the winner's audio, no claims.
        keys = sorted(info.key[len(f"voices/{name}/"):] for info in storage.list(f"voices/{name}/"))
        assert len(keys) == 2 and keys[1] == "voice.json", keys
        assert re.fullmatch(r"uploads/[^/]+/reference\.wav", keys[0]), keys


def _check_overwrites_stay_whole(storage, rounds: list) -> None:
    from worker.services import voices

    for answers in rounds:
        assert all("error" not in out for _, out in answers), answers
    voice = voices.load(storage, "shared")
    assert len(set(take_of_voice(voice))) == 1
    assert not [info.key for info in storage.list("voices/shared/claims/")]


NO_OVERWRITE_ROUNDS = 2   # each on a fresh name: race0, race1, ...
OVERWRITE_ROUNDS = 3      # all on the name "shared"


def _payloads(clip) -> list:
    """Process i's uploads, one per round: take i each time."""
    return [[take_payload(*clip, take, f"race{round_}", overwrite=False)
             for round_ in range(NO_OVERWRITE_ROUNDS)]
            + [take_payload(*clip, take, "shared", overwrite=True)] * OVERWRITE_ROUNDS
            for take in range(PROCESSES)]


def _race_and_check(env: dict, plain: bool, clip) -> None:
    names = [f"race{r}" for r in range(NO_OVERWRITE_ROUNDS)] + ["shared"]
    outcomes, read = race(env, plain, _payloads(clip), names)
    seen, takes, problems = read
    assert problems == []
    assert seen > 0, "the reader never saw a stored voice"
    storage = _storage(env, plain)
    _check_exactly_one_wins(storage, {r: outcomes[r] for r in range(NO_OVERWRITE_ROUNDS)})
    _check_overwrites_stay_whole(storage, [outcomes[r] for r in outcomes
                                           if r >= NO_OVERWRITE_ROUNDS])


@pytest.mark.slow
@pytest.mark.parametrize("plain", [False, True], ids=["if-none-match", "no-conditional-writes"])
def test_concurrent_uploads_on_s3(s3_env, clean_env, atomic_moto, clip, plain):
    _race_and_check(s3_env, plain, clip)


def test_concurrent_uploads_on_local_storage(local_env, clean_env, clip):
    _race_and_check(local_env, False, clip)
