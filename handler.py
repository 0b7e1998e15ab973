"""RunPod entry: map the earlier worker's shapes, validate, dispatch, report errors.

Every failure reaches the caller as ``{"error": "<code>: <message>"}``; the
traceback goes to the log with the job id.
"""
from __future__ import annotations

import logging

import jobs
import model_cache_init
import schemas
import tts_engine
import tts_job
import url_fetch
import voices
from errors import INTERNAL_ERROR, WorkerError
from s3_utils import get_storage
from settings import SettingsError, load_settings

VERSION = "1.0.0"
log = logging.getLogger("handler")


def _tts(request, job_id, settings, storage):
    return tts_job.run(request, job_id, settings, storage)


def _upload(request, job_id, settings, storage):
    def transcribe(samples, rate):
        return tts_engine.transcribe(settings, samples, rate)
    return voices.upload(storage, request, settings, url_fetch.fetch_to_file, transcribe)


def _download(request, job_id, settings, storage):
    expires = request.expires_in or settings.presigned_url_expiry
    if request.voice_name:
        key = voices.stored_reference_key(storage, request.voice_name)
        return jobs.download(storage, key, f"voice {request.voice_name}", expires)
    key = jobs.job_file_key(storage, request.job_id, request.file)
    return jobs.download(storage, key, f"the {request.file} file of job {request.job_id}",
                         expires)


def _health(request, job_id, settings, storage):
    facts = model_cache_init.health_facts(settings)
    return {"status": "ok", "version": VERSION, "model_loaded": tts_engine.is_loaded(),
            "storage": storage.kind, **facts}


ACTIONS = {
    "tts": _tts,
    "upload": _upload,
    "list_voices": lambda request, job_id, settings, storage: voices.list_voices(storage),
    "delete_voice": lambda request, job_id, settings, storage:
        voices.delete(storage, request.voice_name),
    "status": lambda request, job_id, settings, storage: jobs.status(storage, request.job_id),
    "result": lambda request, job_id, settings, storage:
        jobs.result(storage, request.job_id, settings.presigned_url_expiry),
    "download": _download,
    "health": _health,
}


def handler(job: dict) -> dict:
    """Run one RunPod job."""
    job_id = str(job.get("id") or "local")
    try:
        settings = load_settings()
        action, fields = schemas.normalize(job.get("input"))
        request = schemas.validate(action, fields, settings)
        log.info("job %s: %s", job_id, action)
        return ACTIONS[action](request, job_id, settings, get_storage(settings))
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


def configure_logging(level: str) -> None:
    """The worker's log: job lines at ``level``; nothing that could carry a URL or key."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # These log request URLs (presigned, with signatures) and headers at DEBUG.
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "httpx", "filelock"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    from runpod.serverless.modules.rp_logger import RunPodLogger
    # The SDK logs every handler result at DEBUG, presigned URLs included.
    RunPodLogger().set_level("INFO" if level == "DEBUG" else level)


def main() -> None:
    import runpod

    settings = load_settings()
    configure_logging(settings.log_level)
    model_cache_init.prepare_worker(settings, preload=lambda: tts_engine.get_model(settings))
    runpod.serverless.start({"handler": handler})


if __name__ == "__main__":
    main()
