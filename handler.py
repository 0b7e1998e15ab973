"""RunPod entry: map the earlier worker's shapes, validate, dispatch, report errors.

Every failure reaches the caller as ``{"error": "<code>: <message>"}``; the
traceback goes to the log with the job id.
"""
from __future__ import annotations

import functools
import logging
import sys
from dataclasses import dataclass, field
from typing import Callable, Optional

import model_cache_init
from s3_utils import Storage, get_storage
from settings import Settings, SettingsError, load_settings
from worker import schemas
from worker.core.errors import INTERNAL_ERROR, WorkerError
from worker.core.stopping import StopSignal
from worker.inference import engine, transcriber
from worker.media import url_fetch
from worker.services import align_job, jobs, script_job, tts_job, voices

VERSION = "1.0.0"
log = logging.getLogger("handler")


@dataclass(frozen=True)
class Context:
    job_id: str
    settings: Settings
    storage: Storage
    startup: Optional[model_cache_init.StartupReport] = None
    stop: StopSignal = field(default_factory=StopSignal)
    notify: Optional[Callable[[int, int], None]] = None   # RunPod progress updates


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
    stop = stop or StopSignal()
    try:
        stop.arm()   # the SDK's (or its server's) SIGTERM handler is in place by now
        settings = load_settings()
        action, fields = schemas.normalize(job.get("input"))
        request = schemas.validate(action, fields, settings)
        log.info("job %s: %s", job_id, action)
        context = Context(job_id, settings, get_storage(settings), startup, stop,
                          _progress_updates(job))
        return ACTIONS[action](request, context)
    except WorkerError as exc:
        log.warning("job %s: %s", job_id, exc)
        return exc.to_response()
    except SettingsError as exc:
        log.error("job %s: bad configuration: %s", job_id, exc)
        return WorkerError(INTERNAL_ERROR, f"the worker is misconfigured: {exc}").to_response()
    except Exception:  # noqa: BLE001 - the caller gets a code, the log gets the traceback
        log.exception("job %s: unexpected error", job_id)
        return WorkerError(INTERNAL_ERROR, "unexpected error; the worker log has the "
                           "details").to_response()


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
    # One job at a time (no concurrency_modifier). bench/ measured 4 jobs at once
    # in threads no faster than 1 (generation holds the engine's run lock), and a
    # worker holding queued tts jobs keeps them from idle workers. The SDK also
    # runs a sync handler on its event loop, so more would need an async handler.
    runpod.serverless.start({"handler": functools.partial(handler, startup=report,
                                                          stop=StopSignal())})


if __name__ == "__main__":
    main()
