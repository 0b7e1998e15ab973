"""A streamed ``tts`` job: parts of the audio as they become final, then the output.

The chunk plan, and so the audio, is the one of an unstreamed job; only the
first chunk goes through the model on its own, so the first part comes
early. After each batch, the track of the chunks finished so far is joined,
and what no later chunk can change (up to where the next cross-fade begins)
is stored as a small WAV part and yielded. The parts' samples, in order, are
the samples of the final audio. The last element is the normal tts output,
stored and recorded; a failure ends the stream with the contract's error and
a FAILED record.
"""
from __future__ import annotations

import logging
from typing import Iterator, Optional

import numpy as np

from s3_utils import Storage
from settings import Settings
from worker.core import keys
from worker.core.errors import INTERNAL_ERROR, WorkerError
from worker.core.stopping import StopSignal
from worker.inference import synthesis
from worker.media import audio, track
from worker.schemas import TtsRequest
from worker.services import jobs, tts_job
from worker.text.words import join_words
from worker.timing.written import words_of_chunks

log = logging.getLogger(__name__)


def stream(request: TtsRequest, job_id: str, settings: Settings, storage: Storage,
           stop: Optional[StopSignal] = None, notify=None) -> Iterator[dict]:
    """The parts, then the output (or the error as the last element)."""
    tracker = jobs.JobTracker(storage, job_id, settings.job_heartbeat_seconds, stop, notify)
    finished = tracker.begin()
    if finished is not None:
        yield jobs.with_fresh_urls(storage, finished, settings.presigned_url_expiry)
        return
    try:
        stored = yield from _run(request, job_id, settings, storage, tracker)
        tracker.complete(stored)
    except WorkerError as exc:
        tracker.fail(str(exc), exc.retryable)
        yield exc.to_response()
        return
    except Exception as exc:  # noqa: BLE001 - the stream ends with the contract's error
        log.exception("job %s: unexpected failure", job_id)
        error = WorkerError(INTERNAL_ERROR, f"the job failed unexpectedly ({type(exc).__name__}); "
                            "the worker log has the details")
        tracker.fail(str(error))
        yield error.to_response()
        return
    except BaseException:
        tracker.fail(f"{INTERNAL_ERROR}: the job was interrupted before it finished",
                     retryable=True)
        raise
    yield jobs.with_fresh_urls(storage, stored, settings.presigned_url_expiry)


def _run(request, job_id, settings, storage, tracker) -> Iterator[dict]:
    setup = tts_job.start(request, job_id, settings, storage, tracker)
    model = setup.model
    speech = synthesis.plan_speech(
        model, setup.ref.voice.samples, setup.ref.voice.sample_rate, setup.ref.ref_text,
        setup.prepared, seed=setup.seed, speed=request.speed, cfg_strength=request.cfg_strength,
        max_chunk_seconds=settings.max_chunk_seconds)
    parts = _Parts(job_id, model.sample_rate, speech, words_of_chunks(setup.prepared,
                                                                      speech.chunked))
    with setup.metrics.stage("inference"):
        waves: list = []
        for _, waves in synthesis.render_batches(model, speech.plans, request.nfe_step,
                                                 check=tracker.stop.check, first_alone=True):
            part = parts.next(waves, tracker, storage, settings)
            if part is not None:
                yield part
            tracker.advance(sum(wave is not None for wave in waves), len(waves))
    generation = synthesis.assemble(model, speech, waves)
    parts.check(generation.samples)
    return tts_job.finish(request, job_id, settings, tracker, setup, generation)


class _Parts:
    """The parts of one stream: what has been yielded, and the next one."""

    def __init__(self, job_id: str, rate: int, speech, words: list):
        self.job_id, self.rate, self.speech, self.words = job_id, rate, speech, words
        self.emitted = 0          # samples yielded so far
        self.spoken = 0           # chunks whose words went out with a part
        self.number = 0
        self.samples: list = []

    def next(self, waves: list, tracker, storage: Storage, settings: Settings):
        """The next part, or None when this batch settled nothing new."""
        done = next((n for n, wave in enumerate(waves) if wave is None), len(waves))
        if done == 0:
            return None
        chunked = self.speech.chunked
        final = track.settled(waves[:done], [chunk.pause_after for chunk in chunked.chunks][:done],
                              chunked.lead_pause, self.rate, done == len(waves))
        if len(final) <= self.emitted:
            return None
        piece = final[self.emitted:]
        key = keys.job_part(self.job_id, self.number)
        tracker.put(key, audio.encode(piece, self.rate, "wav"))
        text = join_words([word for chunk in self.words[self.spoken:done] for word in chunk])
        part = {"part": self.number, "start": round(self.emitted / self.rate, 3),
                "end": round(len(final) / self.rate, 3), "text": text, "audio_key": key,
                "audio_url": storage.presign(key, settings.presigned_url_expiry)}
        self.samples.append(piece)
        self.emitted, self.spoken, self.number = len(final), done, self.number + 1
        return part

    def check(self, samples: np.ndarray) -> None:
        """The parts joined are the final audio; a difference is a bug, logged."""
        joined = np.concatenate(self.samples) if self.samples else np.zeros(0, np.float32)
        if len(joined) != len(samples) or not np.array_equal(joined, samples):
            log.error("job %s: streamed parts differ from the final audio (%d vs %d samples)",
                      self.job_id, len(joined), len(samples))
