"""F5-TTS's DiT over a packed batch: every row's tokens laid end to end, no padding.

A padded batch makes every item pay for the longest one, and makes the
package's layers look at the padding: its text encoder normalises over the
padded length, its convolutions run across it, and its masked attention
expands a (batch, heads, n, n) mask. Packed, every layer sees each row's own
tokens only, so a row comes out with the bits it gets alone (on the CPU in
fp32; tests/test_golden_numerics.py holds the bits), while each block
operation runs once for the whole batch: the linear layers, norms and
rotary over the packed row, attention as one variable-length call (or, where
that is not exact, one call per distinct row length: attention), the input
embedding's convolution once per distinct row length. On the CPU the packed
row is cut into parts, one per core, each run on a thread of one intra-op
thread (``forward_parts``): faster there than one call with intra-op threads.

``prepare`` makes what stays fixed through a sampling (text embeddings, the
reference rows, rotary tables, row boundaries); ``forward`` is one model
evaluation. Nothing is kept on the model: concurrent samplings cannot meet.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Optional

from worker.inference import attention, precision
from worker.inference.layout import DUMMY, Layout


@dataclass(frozen=True)
class PackedInputs:
    """A sampling's fixed inputs, in packed order."""
    layout: Layout
    groups: tuple          # layout.Group
    token_index: object    # (tokens,) long: the state frame each packed token reads
    cond_text: object      # (1, tokens, mel + text_dim): reference mel and text embedding
    batch: attention.PackedBatch


def supports(transformer) -> bool:
    from f5_tts.model import DiT

    return isinstance(transformer, DiT)


def install(transformer) -> None:
    """Let the transformer's attention take a PackedBatch (attention.install)."""
    attention.install(transformer)


def prepare(transformer, layout: Layout, texts: list, conds: list, backend: str,
            dtype) -> PackedInputs:
    """Fixed inputs for items with token ids ``texts[i]`` (1, n_text) and reference
    mels ``conds[i]`` (1, ref_len, mel), laid out as ``layout`` says."""
    import torch

    device = conds[0].device
    text_rows, cond_rows = [], []
    for row in layout.rows:
        # Each row's own: even without the text, the text encoder masks by its length.
        text_rows.append(transformer.text_embed(
            texts[max(row.item, 0)], seq_len=row.length,
            drop_text=row.unconditional or row.item == DUMMY))
        cond = conds[max(row.item, 0)]
        if row.unconditional or row.item == DUMMY:
            cond_rows.append(torch.zeros(1, row.length, cond.shape[-1], dtype=cond.dtype,
                                         device=device))
        else:
            cond_rows.append(_fit(cond, row.length))
    cond_text = torch.cat((torch.cat(cond_rows, dim=1), torch.cat(text_rows, dim=1)), dim=-1)
    groups = tuple(layout.groups())
    return PackedInputs(layout, groups,
                        torch.tensor(layout.token_index(), dtype=torch.long, device=device),
                        cond_text.to(dtype),
                        packed_batch(transformer, layout, groups, backend, dtype, device))


def _fit(cond, length: int):
    """The reference mel cut or zero-padded to ``length`` frames, as CFM.sample pads it."""
    import torch.nn.functional as F

    if cond.shape[1] >= length:
        return cond[:, :length]
    return F.pad(cond, (0, 0, 0, length - cond.shape[1]))


def packed_batch(transformer, layout: Layout, groups: tuple, backend: str, dtype,
                 device, max_seqlen: Optional[int] = None) -> attention.PackedBatch:
    """Rotary tables and row boundaries of ``layout`` (positions count from each row's start)."""
    import torch

    longest = max(row.length for row in layout.rows)
    cos, sin = precision.rotary_tables(transformer.rotary_embed,
                                       torch.arange(longest, device=device), dtype)
    positions = torch.tensor(layout.positions(), dtype=torch.long, device=device)
    cos, sin = (table.index_select(0, positions)[:, None, None, :] for table in (cos, sin))
    cu_seqlens = None
    if backend in attention.VARLEN:
        cu_seqlens = torch.tensor(layout.cu_seqlens(), dtype=torch.int32, device=device)
    return attention.PackedBatch(groups, cos, sin, backend, cu_seqlens, max_seqlen or longest)


def forward(transformer, inputs: PackedInputs, x_rows, t,
            blocks: Optional[Callable] = None):
    """DiT.forward for every packed row at once: (tokens, mel) noisy mel in
    packed order -> (tokens, mel) predicted flow. ``t`` is the step's time
    embedding (1, dim); ``blocks`` replaces ``run_blocks`` (a CUDA graph)."""
    import torch

    embed = transformer.input_embed
    hidden = embed.proj(torch.cat((x_rows.unsqueeze(0), inputs.cond_text), dim=-1))
    hidden = _conv_position(embed.conv_pos_embed, hidden, inputs.groups)
    out = (blocks or run_blocks)(transformer, hidden, t, inputs.batch)
    return out[0]


def forward_parts(transformer, parts: list, x_rows, t, pool=None,
                  blocks: Optional[Callable] = None):
    """``forward`` over parts laid end to end (layout.split); with a ``pool``
    (row_pool) each part on its own thread."""
    import torch

    if len(parts) == 1:
        return forward(transformer, parts[0], x_rows, t, blocks)
    chunks = x_rows.split([part.layout.total for part in parts])

    def run(pair):
        with torch.inference_mode():   # per thread: the pool's threads need it too
            return forward(transformer, pair[0], pair[1], t)

    return torch.cat(list(pool.map(run, zip(parts, chunks))))


def row_pool(shards: int) -> ThreadPoolExecutor:
    """``shards`` threads with one intra-op thread each, all started now.

    On the CPU the parts of a packed row go to one such thread per core: on 2
    cores, two blocks over a 6-chunk batch took 7.3 s this way and 8.4 s as
    one row with torch's two intra-op threads (best of 4; both give the same
    bits). torch.set_num_threads also sets the default that threads started
    later take on their first torch call, so each pool thread takes its own
    setting at once, and the default goes back to ``shards`` when all have."""
    import torch

    ready = threading.Barrier(shards + 1)

    def start() -> None:
        torch.set_num_threads(1)
        torch.get_num_threads()  # makes torch settle this thread's count now
        ready.wait()

    pool = ThreadPoolExecutor(shards, thread_name_prefix="f5-rows", initializer=start)
    for _ in range(shards):
        pool.submit(int)  # each waiting initializer makes the pool start one more thread
    ready.wait()
    torch.set_num_threads(shards)
    return pool


def _conv_position(conv_pos_embed, hidden, groups: tuple):
    """InputEmbedding's ``conv_pos_embed(x) + x``, per group of equal-length rows."""
    import torch

    outs = []
    for group in groups:
        rows = hidden[0, group.start:group.end].unflatten(0, (group.count, group.length))
        outs.append((conv_pos_embed(rows) + rows).flatten(0, 1))
    return (outs[0] if len(outs) == 1 else torch.cat(outs)).unsqueeze(0)


def run_blocks(transformer, hidden, t, batch: attention.PackedBatch):
    """DiT.forward after the input embedding, on the packed row (1, tokens, dim)."""
    import torch

    residual = hidden
    for block in transformer.transformer_blocks:
        hidden = block(hidden, t, mask=batch, rope=None)
    if transformer.long_skip_connection is not None:
        hidden = transformer.long_skip_connection(torch.cat((hidden, residual), dim=-1))
    return transformer.proj_out(transformer.norm_out(hidden, t))
