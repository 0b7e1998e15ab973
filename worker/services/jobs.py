"""Job records in the bucket, and the actions that only read them.

``jobs/<id>/job.json`` is written when a job starts, at every stage, every
``JOB_HEARTBEAT_SECONDS`` while it runs, and last with the result or the
error. Objects are written before the record that names them, so a reader
never sees a result whose files are missing.
``status``, ``result`` and ``download`` read records and object heads only:
any worker answers them at once, without a model.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Callable, Optional

from s3_utils import Storage, content_type_for
from settings import Settings
from worker.core import keys
from worker.core.errors import INTERNAL_ERROR, INVALID_INPUT, JOB_FAILED, NOT_FOUND, WorkerError
from worker.core.stopping import StopSignal

log = logging.getLogger(__name__)

IN_PROGRESS, COMPLETED, FAILED = "IN_PROGRESS", "COMPLETED", "FAILED"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class JobRecord:
    job_id: str
    status: str = IN_PROGRESS
    stage: Optional[str] = None
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)
    error: Optional[str] = None
    retryable: bool = False
    attempt: int = 1
    progress: Optional[dict] = None
    result: Optional[dict] = None

    def summary(self, stale_after: Optional[float] = None) -> dict:
        """What ``status`` returns; ``stale`` when an unfinished record has not
        been refreshed for ``stale_after`` seconds (its worker is gone)."""
        out = {"job_id": self.job_id, "status": self.status,
               "created_at": self.created_at, "updated_at": self.updated_at}
        if self.status == IN_PROGRESS:
            out["stage"] = self.stage
            if self.progress is not None:
                out["progress"] = dict(self.progress)
            if stale_after is not None and _age(self.updated_at) > stale_after:
                out["stale"] = True
        if self.status == FAILED:
            out["error"] = self.error
            if self.retryable:
                out["retryable"] = True
        return out


def _age(iso: str) -> float:
    """Seconds since an ``now_iso`` timestamp; unreadable ones count as fresh."""
    try:
        then = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return 0.0
    return (datetime.now(UTC) - then).total_seconds()


def read_record(storage: Storage, job_id: str) -> Optional[JobRecord]:
    data = storage.get_json(keys.job_record(job_id))
    if data is None:
        return None
    known = {name: data[name] for name in JobRecord.__dataclass_fields__ if name in data}
    return JobRecord(**known)


class JobTracker:
    """Keeps one job's record up to date while it runs.

    A heartbeat thread rewrites the record every ``heartbeat_s`` while the job
    runs, so ``updated_at`` shows the worker is alive through long stages. All
    writes go through one lock, and the heartbeat stops before the final write,
    so a late heartbeat can never bring back IN_PROGRESS over the result.
    """

    def __init__(self, storage: Storage, job_id: str, heartbeat_s: float = 30.0,
                 stop: Optional[StopSignal] = None,
                 notify: Optional[Callable[[int, int], None]] = None):
        self.storage = storage
        self.record = JobRecord(job_id)
        self.written: list = []
        self.started = time.monotonic()
        self.heartbeat_s = heartbeat_s
        self.stop = stop or StopSignal()
        self.notify = notify   # RunPod's progress updates, where there is a RunPod
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._beat: Optional[threading.Thread] = None

    def begin(self) -> Optional[dict]:
        """Start the record; return a finished result if this job id already completed.

        RunPod may deliver a job twice. A completed run is answered from its
        record; an interrupted or failed one is run again from a clean prefix.
        """
        previous = read_record(self.storage, self.record.job_id)
        if previous and previous.status == COMPLETED and previous.result:
            log.info("job %s: already completed, returning the stored result",
                     self.record.job_id)
            return previous.result
        if previous:
            self.record.created_at = previous.created_at
            self.record.attempt = previous.attempt + 1
            self._remove_objects()
        self._write()
        self._beat = threading.Thread(target=self._heartbeat, daemon=True,
                                      name=f"heartbeat-{self.record.job_id}")
        self._beat.start()
        return None

    def stage(self, name: str) -> None:
        """Enter a stage; a stopping worker ends the job here instead."""
        self.stop.check()
        with self._lock:
            self.record.stage = name
            self._write_locked()

    def advance(self, done: int, total: int) -> None:
        """Record how many of the job's parts are finished (and tell RunPod)."""
        with self._lock:
            self.record.progress = {"done": done, "total": total}
            self._write_locked()
        if self.notify is not None:
            self.notify(done, total)

    def put(self, key: str, data: bytes) -> None:
        """Store a job object and remember it, so a failure can take it back."""
        self.written.append(key)
        self.storage.put_bytes(key, data, content_type_for(key))

    def complete(self, result: dict) -> None:
        with self._lock:
            self._done.set()
            self.record.status, self.record.stage, self.record.result = COMPLETED, None, result
            self._write_locked()

    def fail(self, error: str, retryable: bool = False) -> None:
        """Record the error and remove what this run stored; never raises."""
        try:
            with self._lock:
                self._done.set()
            if self.written:
                self.storage.delete(self.written)
            with self._lock:
                self.record.status, self.record.error = FAILED, error
                self.record.retryable = retryable
                self._write_locked()
        except Exception:  # noqa: BLE001 - the caller's error matters more than this one
            log.exception("job %s: could not record the failure", self.record.job_id)

    def _heartbeat(self) -> None:
        while not self._done.wait(self.heartbeat_s):
            try:
                with self._lock:
                    if self._done.is_set():
                        return
                    self._write_locked()
            except WorkerError as exc:   # a storage hiccup: the next beat tries again
                log.warning("job %s: heartbeat not written: %s", self.record.job_id, exc)

    def _remove_objects(self) -> None:
        stale = [info.key for info in self.storage.list(keys.job_prefix(self.record.job_id))
                 if info.key != keys.job_record(self.record.job_id)]
        if stale:
            self.storage.delete(stale)

    def _write(self) -> None:
        with self._lock:
            self._write_locked()

    def _write_locked(self) -> None:
        self.record.updated_at = now_iso()
        self.storage.put_json(keys.job_record(self.record.job_id), asdict(self.record))


def run_tracked(tracker: JobTracker, work: Callable[[JobTracker], dict], job_id: str) -> dict:
    """Run ``work`` under its record: begin, then complete or fail, whatever
    ends it; returns the stored result (a re-delivered finished job's as is)."""
    finished = tracker.begin()
    if finished is not None:
        return finished
    try:
        tracker.stop.check()
        stored = work(tracker)
        tracker.complete(stored)
    except WorkerError as exc:
        tracker.fail(str(exc), exc.retryable)
        raise
    except Exception as exc:
        log.exception("job %s: unexpected failure", job_id)
        error = WorkerError(INTERNAL_ERROR, f"the job failed unexpectedly ({type(exc).__name__}); "
                            "the worker log has the details")
        tracker.fail(str(error))
        raise error from exc
    except BaseException:
        # Cancelled or shutting down: the record must not stay IN_PROGRESS.
        tracker.fail(f"{INTERNAL_ERROR}: the job was interrupted before it finished",
                     retryable=True)
        raise
    return stored


def run_job(work: Callable[[JobTracker], dict], job_id: str, settings: Settings,
            storage: Storage, stop: Optional[StopSignal] = None, notify=None) -> dict:
    """Run one job's ``work`` under its record (heartbeat, stages, the final
    record) and answer with fresh URLs; a re-delivered finished job is answered
    as is."""
    tracker = JobTracker(storage, job_id, settings.job_heartbeat_seconds, stop, notify)
    stored = run_tracked(tracker, work, job_id)
    return with_fresh_urls(storage, stored, settings.presigned_url_expiry)


def status(storage: Storage, job_id: str, stale_after: Optional[float] = None) -> dict:
    record = read_record(storage, job_id)
    if record is None:
        raise WorkerError(NOT_FOUND, f"job {job_id} does not exist (or has not started yet)")
    return record.summary(stale_after)


def result(storage: Storage, job_id: str, expires_in: int) -> dict:
    record = read_record(storage, job_id)
    if record is None:
        raise WorkerError(NOT_FOUND, f"job {job_id} does not exist (or has not started yet)")
    if record.status == FAILED:
        raise WorkerError(JOB_FAILED, f"job {job_id} failed: {record.error}")
    if record.status != COMPLETED or not record.result:
        return {"job_id": job_id, "status": record.status}
    return with_fresh_urls(storage, record.result, expires_in)


def with_fresh_urls(storage: Storage, stored: dict, expires_in: int) -> dict:
    """A stored result with every URL it names presigned anew (audio, timing
    file, a script's segment files)."""
    out = dict(stored)
    if stored.get("audio_key"):
        out["audio_url"] = storage.presign(stored["audio_key"], expires_in)
    if stored.get("segments"):
        out["segments"] = [_segment_urls(storage, segment, expires_in)
                           for segment in stored["segments"]]
    if stored.get("timing_key"):
        out["timing_url"] = storage.presign(stored["timing_key"], expires_in)
        out["timing_files"] = {stored["timing_format"]: out["timing_url"]}
    out["url_expires_in"] = expires_in
    return out


def _segment_urls(storage: Storage, segment: dict, expires_in: int) -> dict:
    if not segment.get("audio_key"):
        return segment
    return {**segment, "audio_url": storage.presign(segment["audio_key"], expires_in)}


def job_file_key(storage: Storage, job_id: str, file: str) -> str:
    record = read_record(storage, job_id)
    if record is None:
        raise WorkerError(NOT_FOUND, f"job {job_id} does not exist")
    if record.status != COMPLETED or not record.result:
        raise WorkerError(NOT_FOUND, f"job {job_id} has no files yet (status "
                          f"{record.status})")
    if file.startswith("segment:"):
        return _segment_key(record.result, job_id, int(file.split(":", 1)[1]))
    key = record.result.get("audio_key" if file == "audio" else "timing_key")
    if not key:
        raise WorkerError(NOT_FOUND, f"job {job_id} has no {file} file; timing files exist "
                          "only for jobs run with return_word_timings, audio files only "
                          "for tts and script jobs")
    return key


def _segment_key(result: dict, job_id: str, index: int) -> str:
    segments = result.get("segments") or []
    key = segments[index].get("audio_key") if index < len(segments) else None
    if not key:
        raise WorkerError(NOT_FOUND, f"job {job_id} has no file for segment {index}; "
                          "segment files exist for script jobs run with segment_files, "
                          f"for segments 0 to {len(segments) - 1}")
    return key


def download(storage: Storage, key: str, what: str, expires_in: int) -> dict:
    """A presigned URL for a key the caller may have (decided by the caller)."""
    if not key.startswith(keys.DOWNLOADABLE):
        raise WorkerError(INVALID_INPUT, "only job and voice files can be downloaded")
    info = storage.require(key, what)
    return {"url": storage.presign(key, expires_in), "key": key, "expires_in": expires_in,
            "size_bytes": info.size, "content_type": content_type_for(key)}
