"""torch.compile of the model's tensor-only parts, paid for at load."""
from __future__ import annotations

import logging
from typing import Callable

from worker.inference.models import LoadedModel

log = logging.getLogger(__name__)


def compile_and_warm_up(loaded: LoadedModel, warm_up: Callable[[LoadedModel], None]) -> bool:
    """torch.compile each block's modulated norm and feed-forward, then run the
    warm-up so the compile cost is paid at load, not in the first job. These
    parts take tensors only, so a packed row of any length reuses one dynamic
    graph; attention stays eager (it loops over the packed segments). If
    compiling fails (no C compiler for Triton, an unsupported op), the model
    runs uncompiled: a slower worker beats one that cannot start."""
    blocks = loaded.model.transformer.transformer_blocks
    eager = [(block.attn_norm.forward, block.ff.forward) for block in blocks]
    try:
        compile_blocks(blocks)
        warm_up(loaded)
        return True
    except Exception as exc:  # noqa: BLE001 - torch.compile fails in too many ways to list
        for block, (norm, ff) in zip(blocks, eager):
            block.attn_norm.forward, block.ff.forward = norm, ff
        if loaded.graphs is not None:
            loaded.graphs.reset()   # graphs the warm-up captured hold compiled kernels
        log.warning("torch.compile failed (%s: %s); the model runs uncompiled",
                    type(exc).__name__, str(exc)[:300])
        return False


def compile_blocks(blocks) -> None:
    import torch

    for block in blocks:
        block.attn_norm.forward = torch.compile(block.attn_norm.forward, dynamic=True)
        block.ff.forward = torch.compile(block.ff.forward, dynamic=True)
