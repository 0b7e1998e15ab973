"""F5-TTS's DiT over a packed batch: each item's tokens laid end to end, no padding.

A padded batch makes every item pay for the longest one, and makes the
package's layers look at the padding: its text encoder normalises over the
padded length, its convolutions run across it, and its masked attention
expands a (batch, heads, n, n) mask. Packed, every layer sees each item's own
tokens only, so an item comes out as it would alone, while the linear layers
(most of the compute) run over all items' tokens at once.

On the CPU the packed rows are split over threads of one core each, and each
thread runs the whole stack of blocks on its share: measured on 2 cores this
beats torch's intra-op threads on the same rows, and there is no hand-over
between threads inside a step.

Nothing here changes the model or keeps state on it: the text embeddings live
in a ``PackedText`` made per sampling, so concurrent samplings cannot meet.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Segments:
    """The lengths of the items laid end to end in a packed row."""
    lengths: tuple

    def spans(self) -> list:
        spans, start = [], 0
        for length in self.lengths:
            spans.append((start, start + length))
            start += length
        return spans


class SegmentAttention:
    """The package's attention processor run on each segment of a packed row on
    its own; with any other mask it is the package's processor unchanged."""

    def __init__(self, inner):
        self.inner = inner

    def __call__(self, attn, x, mask=None, rope=None):
        if not isinstance(mask, Segments):
            return self.inner(attn, x, mask=mask, rope=rope)
        import torch

        return torch.cat([self.inner(attn, x[:, start:end], mask=None,
                                     rope=rope_prefix(rope, end - start))
                          for start, end in mask.spans()], dim=1)


def rope_prefix(rope, length: int):
    # x_transformers applies the *last* positions of a longer table; cut it to the item.
    if rope is None:
        return None
    freqs, scale = rope
    return freqs[:, :length], (scale[:, :length] if hasattr(scale, "shape") else scale)


def install(transformer) -> None:
    """Let the transformer's attention take a Segments mask."""
    for module in transformer.modules():
        processor = getattr(module, "processor", None)
        if processor is not None and hasattr(processor, "attn_mask_enabled"):
            module.processor = SegmentAttention(processor)


def supports(transformer) -> bool:
    from f5_tts.model import DiT

    return isinstance(transformer, DiT)


@dataclass(frozen=True)
class PackedText:
    """Each item's text embedding at its own length, with and without the text
    (the unconditional branch of classifier-free guidance)."""
    cond: list
    uncond: list


def embed_text(transformer, text, lengths: list) -> PackedText:
    """Embed each item's text alone: together, the text encoder's GRN layers
    would normalise over the padded length and the padding would reach every item."""
    def embed(drop_text: bool) -> list:
        return [transformer.text_embed(text[index:index + 1], seq_len=length, drop_text=drop_text)
                for index, length in enumerate(lengths)]

    return PackedText(embed(False), embed(True))


@dataclass(frozen=True, order=True)
class Row:
    """One item of one guidance branch, as the input embedding takes it."""
    item: int
    unconditional: bool
    length: int


def flow(transformer, x, cond, texts: PackedText, time, lengths: list, guided: bool,
         pool: Optional[ThreadPoolExecutor] = None, shards: int = 1):
    """DiT's prediction for every item of the padded state ``x`` (batch, n, mel):
    what ``DiT.forward`` gives each item alone (``cfg_infer`` when ``guided``),
    stacked, padding zero; with guidance the conditional half comes first.
    ``shards`` > 1 needs a ``pool`` of that many threads (row_pool)."""
    import torch

    t = transformer.time_embed(time.reshape(1))
    rows = [Row(item, branch, length) for branch in ((False, True) if guided else (False,))
            for item, length in enumerate(lengths)]
    groups = balance(rows, shards)
    if len(groups) == 1:
        parts = [_forward_rows(transformer, x, cond, texts, t, groups[0])]
    else:
        parts = list(pool.map(lambda group: _forward_rows(transformer, x, cond, texts, t, group),
                              groups))
    out = torch.zeros(len(rows), x.shape[1], transformer.proj_out.out_features,
                      dtype=x.dtype, device=x.device)
    for group, outputs in zip(groups, parts):
        for row, output in zip(group, outputs):
            index = row.item + (len(lengths) if row.unconditional else 0)
            out[index, :row.length] = output[0]
    return out


def balance(rows: list, shards: int) -> list:
    """Rows in up to ``shards`` groups of about equal length; the longest rows
    are placed first, each in the group with the fewest tokens so far."""
    groups = [[] for _ in range(max(1, min(shards, len(rows))))]
    sizes = [0] * len(groups)
    for row in sorted(rows, key=lambda row: -row.length):
        lightest = sizes.index(min(sizes))
        groups[lightest].append(row)
        sizes[lightest] += row.length
    return [sorted(group, key=lambda row: (row.unconditional, row.item)) for group in groups]


def _forward_rows(transformer, x, cond, texts: PackedText, t, rows: list) -> list:
    """DiT.forward's body on the packed rows: input embedding per row, the
    blocks on the packed row, output per row."""
    import torch

    # Inference mode is per thread; set it here for the pool's threads too.
    with torch.inference_mode():
        embedded = [transformer.input_embed(
            x[row.item:row.item + 1, :row.length], cond[row.item:row.item + 1, :row.length],
            (texts.uncond if row.unconditional else texts.cond)[row.item],
            drop_audio_cond=row.unconditional) for row in rows]
        hidden = torch.cat(embedded, dim=1)
        segments = Segments(tuple(row.length for row in rows))
        rope = transformer.rotary_embed.forward_from_seq_len(max(segments.lengths))
        residual = hidden
        for block in transformer.transformer_blocks:
            hidden = block(hidden, t, mask=segments, rope=rope)
        if transformer.long_skip_connection is not None:
            hidden = transformer.long_skip_connection(torch.cat((hidden, residual), dim=-1))
        out = transformer.proj_out(transformer.norm_out(hidden, t))
        return torch.split(out, list(segments.lengths), dim=1)


def row_pool(shards: int) -> ThreadPoolExecutor:
    """``shards`` threads with one intra-op thread each, all started now.

    torch.set_num_threads also sets the default that threads started later take
    on their first torch call, so each pool thread takes its own setting at once,
    and the default goes back to ``shards`` when all have."""
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
