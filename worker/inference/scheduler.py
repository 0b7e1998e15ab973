"""One thread runs the model; the chunks of every job in flight share its batches.

Jobs (tts, script, each in its own thread) hand their chunk plans over as a
ticket and wait for them batch by batch. The scheduler's thread fills each
packed batch from the tickets waiting, taking plans in order from each in
turn (oldest ticket first), up to the engine's plan and frame limits, and
with the same number of steps. Each plan's noise comes from its own seed and
a packed row comes out as it would alone, so a job's audio does not depend
on the jobs it shared batches with. A batch that fails fails the tickets it
held (and only those); a ticket whose job stops is dropped at its next batch.
"""
from __future__ import annotations

import collections
import itertools
import logging
import queue
import threading
from dataclasses import dataclass, field
from typing import Callable, Iterator, List, Optional

log = logging.getLogger(__name__)

_DONE = object()


@dataclass(eq=False)
class Ticket:
    plans: list
    steps: int
    first_alone: bool = False    # its first plan in a batch without its others
    waves: list = field(default_factory=list)
    pending: collections.deque = field(default_factory=collections.deque)
    number: int = 0
    cancelled: bool = False
    delivered: queue.Queue = field(default_factory=queue.Queue)   # (indices | error | _DONE)


class Scheduler:
    """``run_batch(plans, steps) -> waves`` runs one packed batch (on this
    scheduler's thread only); ``limits`` gives (plans, frames) per batch."""

    def __init__(self, run_batch: Callable[[list, int], list],
                 limits: Callable[[], tuple], name: str = "f5-scheduler"):
        self._run_batch = run_batch
        self._limits = limits
        self._tickets: List[Ticket] = []
        self._numbers = itertools.count()
        self._wake = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, plans: list, steps: int, first_alone: bool = False) -> Ticket:
        ticket = Ticket(plans, steps, first_alone, [None] * len(plans),
                        collections.deque(range(len(plans))), next(self._numbers))
        with self._wake:
            self._tickets.append(ticket)
            self._wake.notify()
        return ticket

    def results(self, ticket: Ticket,
                check: Optional[Callable[[], None]] = None) -> Iterator[list]:
        """The plan indices of each finished batch, as they finish (``ticket.waves``
        fills meanwhile); ``check`` runs before each wait and may raise to stop."""
        try:
            while True:
                if check is not None:
                    check()
                item = ticket.delivered.get()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.cancel(ticket)

    def cancel(self, ticket: Ticket) -> None:
        with self._wake:
            ticket.cancelled = True
            ticket.pending.clear()
            if ticket in self._tickets:
                self._tickets.remove(ticket)

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not any(ticket.pending for ticket in self._tickets):
                    self._wake.wait()
                batch = self._take()
            self._run(batch)

    def _take(self) -> list:
        """(ticket, plan index) pairs of the next batch (called under the lock):
        plans of the oldest waiting ticket's step count, one from each ticket in
        turn, until the batch is full. A ticket whose first plan goes alone gives
        no other plan to that batch."""
        count, frames = self._limits()
        steps = next(ticket for ticket in self._tickets if ticket.pending).steps
        turn = [ticket for ticket in self._tickets if ticket.pending and ticket.steps == steps]
        batch, size, alone = [], 0, set()
        progressed = True
        while progressed and len(batch) < count:
            progressed = False
            for ticket in turn:
                if not ticket.pending or ticket.number in alone or len(batch) >= count:
                    continue
                plan = ticket.plans[ticket.pending[0]]
                if batch and size + plan.frames > frames:
                    return batch
                batch.append((ticket, ticket.pending.popleft()))
                size += plan.frames
                progressed = True
                if ticket.first_alone:
                    ticket.first_alone = False
                    alone.add(ticket.number)
        return batch

    def _run(self, batch: list) -> None:
        tickets = list(dict.fromkeys(ticket for ticket, _ in batch))
        try:
            waves = self._run_batch([ticket.plans[index] for ticket, index in batch],
                                    batch[0][0].steps)
        except BaseException as exc:  # noqa: BLE001 - handed to every ticket of the batch
            log.warning("a batch of %d chunks failed: %s", len(batch), exc)
            for ticket in tickets:
                self.cancel(ticket)
                ticket.delivered.put(exc)
            return
        for ticket in tickets:
            finished = [index for owner, index in batch if owner is ticket]
            for (owner, index), wave in zip(batch, waves):
                if owner is ticket:
                    ticket.waves[index] = wave
            ticket.delivered.put(finished)
            if all(wave is not None for wave in ticket.waves):
                ticket.delivered.put(_DONE)
                with self._wake:
                    if ticket in self._tickets:
                        self._tickets.remove(ticket)
