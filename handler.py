"""RunPod entry: map the earlier worker's shapes, validate, dispatch, report errors.

Every failure reaches the caller as ``{"error": "<code>: <message>"}``; the
traceback goes to the log with the job id.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import sys
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional

import model_cache_init
from s3_utils import Storage, get_storage
from settings import Settings, SettingsError, load_settings
from worker import schemas
from worker.core.errors import INTERNAL_ERROR, WorkerError
from worker.core.stopping import StopSignal
from worker.inference import engine, models, transcriber
from worker.media import url_fetch
from worker.services import align_job, jobs, script_job, tts_job, tts_stream, voices

VERSION = "1.0.0"
GENERATING = ("tts", "script")   # the actions that wait for a generating slot
LIGHT_SLOTS = 2                  # jobs a worker takes beyond them, for light actions
log = logging.getLogger("handler")


@dataclass(frozen=True)
class Context:
    job_id: str
    settings: Settings
    storage: Storage
    startup: Optional[model_cache_init.StartupReport] = None
    stop: StopSignal = field(default_factory=StopSignal)
    notify: Optional[Callable[[int, int], None]] = None   # RunPod progress updates
    action: str = "tts"


def _tts(request, ctx: Context):
    return _generating(tts_job.run, request, ctx)


def _generating(action, request, ctx: Context):
    """A job that loads the model; the first load's files go to the S3 model cache."""
    loaded_before = engine.is_loaded()
    result = action(request, ctx.job_id, ctx.settings, ctx.storage, ctx.stop, ctx.notify)
    if not loaded_before and ctx.settings.enable_s3_model_cache:
        # The first load filled the local cache: mirror what the bucket lacks,
        # in the background, so the next cold worker starts warm.
        cache_dir = model_cache_init.cache_dir_of(ctx.settings, ctx.startup)
        model_cache_init.upload_missing_models(ctx.settings, ctx.storage, cache_dir)
    return result


def _upload(request, ctx: Context):
    def transcribe(samples, rate):
        return transcriber.transcribe(ctx.settings, samples, rate)
    return voices.upload(ctx.storage, request, ctx.settings, url_fetch.fetch_to_file, transcribe)


def _download(request, ctx: Context):
    expires = request.expires_in or ctx.settings.presigned_url_expiry
    if request.voice_name:
        key = voices.stored_reference_key(ctx.storage, request.voice_name)
        return jobs.download(ctx.storage, key, f"voice {request.voice_name}", expires)
    key = jobs.job_file_key(ctx.storage, request.job_id, request.file)
    return jobs.download(ctx.storage, key, f"the {request.file} file of job {request.job_id}",
                         expires)


def _health(request, ctx: Context):
    facts = model_cache_init.health_facts(ctx.settings, ctx.startup)
    return {"status": "ok", "version": VERSION, "model_loaded": engine.is_loaded(),
            "storage": ctx.storage.kind, "numerics": engine.numerics(ctx.settings), **facts}


ACTIONS = {
    "tts": _tts,
    "script": lambda request, ctx: _generating(script_job.run, request, ctx),
    "align": lambda request, ctx: align_job.run(request, ctx.job_id, ctx.settings, ctx.storage,
                                                ctx.stop),
    "upload": _upload,
    "list_voices": lambda request, ctx: voices.list_voices(ctx.storage),
    "delete_voice": lambda request, ctx: voices.delete(ctx.storage, request.voice_name),
    "status": lambda request, ctx: jobs.status(ctx.storage, request.job_id,
                                               ctx.settings.job_stale_seconds),
    "result": lambda request, ctx: jobs.result(ctx.storage, request.job_id,
                                               ctx.settings.presigned_url_expiry),
    "download": _download,
    "health": _health,
}


def handler(job: dict, startup: Optional[model_cache_init.StartupReport] = None,
            stop: Optional[StopSignal] = None) -> dict:
    """Run one RunPod job. ``stop`` is the worker's (main() makes one); from plain
    Python nothing stops a job."""
    job_id = str(job.get("id") or "local")
    with _answered(job_id) as answer:
        request, context = _parse(job, startup, stop)
        answer.append(ACTIONS[context.action](request, context))
    return answer[-1]


def stream_handler(job: dict, startup: Optional[model_cache_init.StartupReport] = None,
                   stop: Optional[StopSignal] = None) -> Iterator[dict]:
    """A STREAMING worker's handler: a streamed tts job's parts and then its
    output; every other job's output (or error) as the one element."""
    job_id = str(job.get("id") or "local")
    parsed: list = []
    with _answered(job_id) as answer:
        parsed.append(_parse(job, startup, stop))
    if answer:                       # refused before any work
        yield answer[-1]
        return
    request, context = parsed[0]
    if context.action != "tts" or not request.stream:
        with _answered(job_id) as answer:      # validated once, above
            answer.append(ACTIONS[context.action](request, context))
        yield answer[-1]
        return
    for part in tts_stream.stream(request, job_id, context.settings, context.storage,
                                  context.stop, context.notify):
        if part.get("refresh_worker"):
            # The SDK ignores refresh_worker from a generator (and reads no further
            # than an error): stop this worker the way RunPod would. The records
            # are written; the SDK's loop posts this last part, then exits.
            log.error("job %s: the GPU is broken; this worker stops", job_id)
            os.kill(os.getpid(), signal.SIGTERM)
        yield part


def _parse(job: dict, startup, stop) -> tuple:
    """The validated request and its context; raises the contract's errors."""
    stop = stop or StopSignal()
    stop.arm()   # the SDK's (or its server's) SIGTERM handler is in place by now
    settings = load_settings()
    action, fields = schemas.normalize(job.get("input"))
    request = schemas.validate(action, fields, settings)
    job_id = str(job.get("id") or "local")
    log.info("job %s: %s", job_id, action)
    return request, Context(job_id, settings, get_storage(settings), startup, stop,
                            _progress_updates(job), action)


@contextlib.contextmanager
def _answered(job_id: str):
    """Every failure as the contract's ``{"error": "<code>: <message>"}``,
    appended to the answer list the block is given."""
    answer: list = []
    try:
        yield answer
    except WorkerError as exc:
        log.warning("job %s: %s", job_id, exc)
        answer.append(exc.to_response())
    except SettingsError as exc:
        log.error("job %s: bad configuration: %s", job_id, exc)
        answer.append(WorkerError(INTERNAL_ERROR,
                                  f"the worker is misconfigured: {exc}").to_response())
    except Exception:  # noqa: BLE001 - the caller gets a code, the log gets the traceback
        log.exception("job %s: unexpected error", job_id)
        answer.append(WorkerError(INTERNAL_ERROR, "unexpected error; the worker log has the "
                                  "details").to_response())


async def async_handler(job: dict, startup=None, stop: Optional[StopSignal] = None,
                        slots: Optional[asyncio.Semaphore] = None) -> dict:
    """The handler as RunPod's job loop runs it with concurrency: each job in a
    thread of its own; generating jobs wait for one of ``slots``, light ones
    are answered at once."""
    (stop or StopSignal()).arm()
    async with _slot(job, slots):
        return await asyncio.to_thread(handler, job, startup, stop)


async def async_stream_handler(job: dict, startup=None, stop: Optional[StopSignal] = None,
                               slots: Optional[asyncio.Semaphore] = None):
    """stream_handler the same way: its parts pulled one by one in a thread."""
    (stop or StopSignal()).arm()
    parts = stream_handler(job, startup, stop)
    async with _slot(job, slots):
        while True:
            part = await asyncio.to_thread(next, parts, None)
            if part is None:
                return
            yield part


def _slot(job: dict, slots: Optional[asyncio.Semaphore]):
    try:
        action, _ = schemas.normalize(job.get("input"))
    except WorkerError:
        action = None    # refused at once, in the thread
    return slots if slots is not None and action in GENERATING else contextlib.nullcontext()


def _progress_updates(job: dict) -> Optional[Callable[[int, int], None]]:
    """RunPod's progress updates for this job, on RunPod (not locally, where the
    SDK has nowhere to send them)."""
    from runpod.serverless.modules.worker_state import IS_LOCAL_TEST

    if IS_LOCAL_TEST or not job.get("id"):
        return None
    from runpod.serverless import progress_update

    return lambda done, total: progress_update(job, {"done": done, "total": total})


def configure_logging(level: str) -> None:
    """The worker's log: job lines at ``level``; nothing that could carry a URL or key."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # These log request URLs (presigned, with signatures) and headers at DEBUG.
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "httpx", "filelock"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    from runpod.serverless.modules.rp_logger import RunPodLogger
    # The SDK logs every handler result at DEBUG, presigned URLs included.
    RunPodLogger().set_level("INFO" if level == "DEBUG" else level)


def fitness() -> None:
    """RunPod fitness check: a worker whose required parts cannot work must not take jobs."""
    model_cache_init.fitness_check(load_settings())


def main() -> None:
    import runpod

    try:
        settings = load_settings()
    except SettingsError as exc:
        sys.exit(f"configuration error: {exc}")
    configure_logging(settings.log_level)
    runpod.serverless.register_fitness_check(fitness)
    report = model_cache_init.prepare_worker(settings,
                                             preload=lambda: engine.get_model(settings))
    runpod.serverless.start(worker_config(settings, report))


def worker_config(settings: Settings, report) -> dict:
    """What the SDK is started with: the async handler (a generator one with
    STREAMING), and a concurrency of MAX_CONCURRENT_JOBS generating jobs plus
    two light ones, which the SDK's job loop keeps taking while generation runs."""
    limit = settings.max_concurrent_jobs or (
        4 if models.resolve_device(settings.device).startswith("cuda") else 1)
    bound = dict(startup=report, stop=StopSignal(), slots=asyncio.Semaphore(limit))
    config = {"concurrency_modifier": lambda current: limit + LIGHT_SLOTS}
    if settings.streaming:
        return {**config, "handler": functools.partial(async_stream_handler, **bound),
                "return_aggregate_stream": True}
    return {**config, "handler": functools.partial(async_handler, **bound)}


if __name__ == "__main__":
    main()
