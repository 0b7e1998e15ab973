"""CUDA graphs of the DiT block stack, one per length bucket (CUDA_GRAPHS=true).

Eager PyTorch at F5-TTS's sizes spends much of a step launching kernels; a
graph replays all of a step's block kernels in one launch. A graph has fixed
shapes, so the packed row is padded to a bucket length (layout.bucket_length)
with a dummy row, and the rows' boundaries and rotary tables live in static
buffers that each sampling fills before its first step. Only the blocks are
captured (the input embedding's per-length convolution stays eager). Needs a
variable-length attention backend (one kernel whatever the rows); at most
MAX_GRAPHS graphs are kept, least recently used dropped first. If a capture
fails the model runs eagerly from then on, with a log line.
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Optional

from worker.inference import attention, packed_dit
from worker.inference import layout as layouts

log = logging.getLogger(__name__)

MAX_GRAPHS = 8      # each holds its activations' memory while kept
MAX_ROWS = 32       # row boundaries a graph's static buffer holds (16 guided chunks)
WARM_UP_RUNS = 2    # eager runs on a side stream before capture, as torch's docs do


def seqlen_bound(longest: int, tokens: int) -> int:
    """The longest row a graph is captured for: kernels are launched for it, so a
    bucket of it serves every layout whose rows are no longer."""
    return min(tokens, layouts.bucket_length(longest))


class BlockGraphs:
    """The graphs of one model, keyed by (packed length, longest row bound)."""

    def __init__(self, transformer, capacity: int = MAX_GRAPHS):
        self.transformer = transformer
        self.capacity = capacity
        self.active = True
        self._graphs: OrderedDict = OrderedDict()
        self._pool = None

    def reset(self) -> None:
        """Drop every graph (they replay the kernels they were captured with)."""
        self._graphs.clear()

    def pad(self, plan: layouts.Layout) -> layouts.Layout:
        """The layout a graph can take: padded to its bucket with a dummy row."""
        if not self.active or len(plan.rows) >= MAX_ROWS:
            return plan
        return layouts.padded(plan, layouts.bucket_length(plan.total))

    def runner(self, inputs: packed_dit.PackedInputs):
        """The graph for these inputs, its static buffers filled; None: run eagerly."""
        plan = inputs.layout
        if not self.active or len(plan.rows) > MAX_ROWS \
                or plan.total != layouts.bucket_length(plan.total):
            return None
        longest = max(row.length for row in plan.rows)
        key = (plan.total, seqlen_bound(longest, plan.total))
        graph = self._graphs.get(key)
        if graph is None:
            graph = self._capture(key, inputs)
            if graph is None:
                return None
        self._graphs.move_to_end(key)
        graph.load(inputs.batch)
        return graph

    def _capture(self, key: tuple, inputs) -> Optional[_Graph]:
        import torch

        try:
            if self._pool is None:
                self._pool = torch.cuda.graph_pool_handle()
            graph = _Graph(self.transformer, key, inputs, self._pool)
        except Exception as exc:  # noqa: BLE001 - capture fails in too many ways to list
            self.active = False
            self._graphs.clear()
            log.warning("CUDA graph capture failed (%s: %s); the model runs eagerly",
                        type(exc).__name__, str(exc)[:300])
            return None
        self._graphs[key] = graph
        while len(self._graphs) > self.capacity:
            self._graphs.popitem(last=False)
        log.info("captured a CUDA graph for %d tokens (rows up to %d)", *key)
        return graph


class StaticInputs:
    """A graph's fixed buffers: the packed hidden state, the time embedding, the
    rotary tables and the row boundaries, each sampling's values copied in. On
    the CPU the plumbing runs eagerly (tests); on CUDA ``_Graph`` captures it."""

    def __init__(self, transformer, key: tuple, inputs: packed_dit.PackedInputs):
        import torch

        tokens, bound = key
        like, batch = inputs.cond_text, inputs.batch
        dim = transformer.input_embed.proj.out_features
        self.tokens = tokens
        self.hidden = torch.zeros(1, tokens, dim, dtype=like.dtype, device=like.device)
        self.t = torch.zeros(1, dim, dtype=like.dtype, device=like.device)
        self.cos, self.sin = torch.zeros_like(batch.cos), torch.zeros_like(batch.sin)
        self.cu_seqlens = torch.full((MAX_ROWS + 1,), tokens, dtype=torch.int32,
                                     device=like.device)
        self.batch = attention.PackedBatch((), self.cos, self.sin, batch.backend,
                                           self.cu_seqlens, bound)
        self.load(batch)

    def load(self, batch: attention.PackedBatch) -> None:
        """A sampling's row boundaries and rotary tables; unused boundaries repeat
        the end, as rows of length zero."""
        self.cos.copy_(batch.cos)
        self.sin.copy_(batch.sin)
        count = batch.cu_seqlens.numel()
        self.cu_seqlens[:count].copy_(batch.cu_seqlens)
        self.cu_seqlens[count:].fill_(self.tokens)

    def feed(self, hidden, t) -> None:
        self.hidden.copy_(hidden)
        self.t.copy_(t)

    def run(self, transformer):
        return packed_dit.run_blocks(transformer, self.hidden, self.t, self.batch)


class _Graph:
    """One captured block stack over its StaticInputs."""

    def __init__(self, transformer, key: tuple, inputs, pool):
        import torch

        self.static = StaticInputs(transformer, key, inputs)
        self.graph = torch.cuda.CUDAGraph()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARM_UP_RUNS):
                self.static.run(transformer)
        torch.cuda.current_stream().wait_stream(side)
        # thread_local: other jobs' threads (transcription, alignment) may use
        # the GPU while this thread captures.
        with torch.cuda.graph(self.graph, pool=pool, capture_error_mode="thread_local"):
            self.out = self.static.run(transformer)

    def load(self, batch: attention.PackedBatch) -> None:
        self.static.load(batch)

    def __call__(self, transformer, hidden, t, batch):
        self.static.feed(hidden, t)
        self.graph.replay()
        return self.out
