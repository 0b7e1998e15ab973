"""A worker told to stop (SIGTERM): jobs notice it at their next step and end.

RunPod stops a worker with SIGTERM and kills it a little later. The SDK's job
loop and the local API's server each install their own SIGTERM handler when
they start, so ``arm`` chains in front of whichever is there at the first job:
the running job is told (it fails with a retryable error at its next step,
and its record says so), then the previous handler shuts the loop down.
"""
from __future__ import annotations

import logging
import signal
import threading

from worker.core.errors import INTERNAL_ERROR, WorkerError

log = logging.getLogger(__name__)

STOPPED_MESSAGE = ("the worker stopped (SIGTERM) before the job finished; "
                   "send the job again")


class StopSignal:
    """Set once when the worker is told to stop; never cleared."""

    def __init__(self):
        self._event = threading.Event()
        self._armed = False

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def request(self) -> None:
        self._event.set()

    def check(self) -> None:
        """Raise the contract's retryable error when the worker is stopping."""
        if self._event.is_set():
            raise WorkerError(INTERNAL_ERROR, STOPPED_MESSAGE, retryable=True)

    def arm(self) -> None:
        """Chain a SIGTERM handler in front of the one installed now (main thread only)."""
        if self._armed or threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGTERM)

        def on_term(signum, frame):
            log.warning("SIGTERM: finishing no new work; running jobs end at their next step")
            self._event.set()
            if callable(previous):
                previous(signum, frame)
            elif previous == signal.SIG_DFL:
                raise SystemExit(128 + signum)

        signal.signal(signal.SIGTERM, on_term)
        self._armed = True
