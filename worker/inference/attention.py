"""DiT's attention over a packed row: one projection, one rotary and (on CUDA)
one variable-length attention call per block, whatever the number of rows.

Each row of the packed row attends only to itself. The Q, K and V projections
run as one fused linear over all rows (the same bits as three, and as one
per row: a row's output does not depend on its neighbours in the matrix);
rotary applies cos/sin tables made once per sampling from fp32 angles.

Attention itself, by backend (``choose`` fixes one at load):
- ``flash_attn_varlen`` (CUDA, flash-attn installed), ``torch_flash_varlen``
  (CUDA, half precision) and ``torch_efficient_varlen`` (CUDA): one call with
  the rows' boundaries;
- ``sdpa_by_length`` (everywhere, and the CPU's): one ``scaled_dot_product_attention``
  call per distinct row length, on the batch of rows of that length. On the
  CPU this is the only exact option: a block-diagonal mask, a key-padding
  mask and nested (jagged) tensors all change the kernel's summation order
  (checked: up to 6e-7 off), while equal-length rows batched together give
  each row the bits it gets alone.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional

log = logging.getLogger(__name__)

BY_LENGTH = "sdpa_by_length"
FLASH_ATTN = "flash_attn_varlen"
TORCH_FLASH = "torch_flash_varlen"
TORCH_EFFICIENT = "torch_efficient_varlen"
BY_BOUNDARIES = "sdpa_by_boundaries"    # tests only: see by_boundaries
VARLEN = (FLASH_ATTN, TORCH_FLASH, TORCH_EFFICIENT, BY_BOUNDARIES)


@dataclass(frozen=True)
class PackedBatch:
    """What attention needs to know about a packed row (passed as DiT's ``mask``)."""
    groups: tuple            # layout.Group: rows of one length, side by side
    cos: object              # (tokens, 1, 1, dim_head) in the model's dtype
    sin: object              # the same, signed for rotate_half's pair swap
    backend: str = BY_LENGTH
    cu_seqlens: object = None    # int32 row boundaries, for the varlen backends
    max_seqlen: int = 0


class PackedAttention:
    """Replaces a block's attention processor: a PackedBatch mask takes the packed
    path; any other call goes to the package's processor unchanged. Holds the
    block's fused QKV weights; the module's to_q/to_k/to_v weights become views
    of them, so they take no more memory and cannot drift apart."""

    def __init__(self, inner, attn):
        self.inner = inner
        self.pe_attn_head = getattr(inner, "pe_attn_head", None)
        self._fuse(attn)

    def _fuse(self, attn) -> None:
        import torch

        layers = (attn.to_q, attn.to_k, attn.to_v)
        self.weight = torch.cat([layer.weight.detach() for layer in layers])
        self.bias = torch.cat([layer.bias.detach() for layer in layers])
        size = attn.inner_dim
        for index, layer in enumerate(layers):
            layer.weight = torch.nn.Parameter(self.weight[index * size:(index + 1) * size],
                                              requires_grad=False)
            layer.bias = torch.nn.Parameter(self.bias[index * size:(index + 1) * size],
                                            requires_grad=False)

    def __call__(self, attn, x, mask=None, rope=None):
        if not isinstance(mask, PackedBatch):
            return self.inner(attn, x, mask=mask, rope=rope)
        if attn.to_q.weight.data_ptr() != self.weight.data_ptr():
            self._fuse(attn)   # the module was moved or cast after install
        return attend(attn, x, mask, self.weight, self.bias, self.pe_attn_head)


def install(transformer) -> None:
    """Give every DiT block's attention the packed path (after the model's last move)."""
    for module in transformer.modules():
        processor = getattr(module, "processor", None)
        if processor is not None and hasattr(processor, "attn_mask_enabled"):
            module.processor = PackedAttention(processor, module)


def attend(attn, x, batch: PackedBatch, weight, bias, pe_attn_head: Optional[int]):
    """The package's AttnProcessor for each row of ``x`` (1, tokens, dim) alone."""
    import torch.nn.functional as F

    tokens, heads = x.shape[1], attn.heads
    qkv = F.linear(x[0], weight, bias).unflatten(-1, (3, heads, -1))
    qk, value = qkv[:, :2], qkv[:, 2]
    if attn.q_norm is not None:
        import torch

        qk = torch.stack((attn.q_norm(qk[:, 0]), attn.k_norm(qk[:, 1])), dim=1)
    qk = rotate(qk, batch.cos, batch.sin, pe_attn_head)
    out = BACKENDS[batch.backend](qk[:, 0], qk[:, 1], value, batch)
    if out.dtype != x.dtype:
        out = out.to(x.dtype)
    return attn.to_out[0](out.reshape(1, tokens, -1))   # to_out[1] is dropout: off in eval


def rotate(qk, cos, sin, pe_attn_head: Optional[int]):
    """x_transformers' apply_rotary_pos_emb on (tokens, 2, heads, dim) queries and
    keys at once: t * cos + rotate_half(t) * sin, with rotate_half's sign in ``sin``
    (the same bits: negating is exact). ``pe_attn_head`` rotates only the first heads."""
    if pe_attn_head is not None:
        import torch

        head = pe_attn_head
        return torch.cat((rotate(qk[:, :, :head], cos, sin, None), qk[:, :, head:]), dim=2)
    swapped = qk.unflatten(-1, (-1, 2)).flip(-1).flatten(-2)
    return qk * cos + swapped * sin


def by_length(query, key, value, batch: PackedBatch):
    """One SDPA call per group of equal-length rows; (tokens, heads, dim) in and out."""
    import torch
    import torch.nn.functional as F

    outs = []
    for group in batch.groups:
        q, k, v = (tensor[group.start:group.end].unflatten(0, (group.count, group.length))
                   .transpose(1, 2) for tensor in (query, key, value))
        outs.append(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(0, 1))
    return outs[0] if len(outs) == 1 else torch.cat(outs)


def by_boundaries(query, key, value, batch: PackedBatch):
    """What the varlen kernels compute, from ``cu_seqlens`` alone, one SDPA call per
    row: the reference for tests of the CUDA graphs' static buffers on the CPU
    (it reads the boundaries on the host, a sync: never chosen to run jobs)."""
    import torch
    import torch.nn.functional as F

    bounds = batch.cu_seqlens.tolist()
    outs = [F.scaled_dot_product_attention(*(tensor[start:end].transpose(0, 1).unsqueeze(0)
                                             for tensor in (query, key, value)))
            [0].transpose(0, 1) for start, end in zip(bounds, bounds[1:]) if end > start]
    return torch.cat(outs)


def flash_attn_varlen(query, key, value, batch: PackedBatch):
    from flash_attn import flash_attn_varlen_func

    return flash_attn_varlen_func(query, key, value, batch.cu_seqlens, batch.cu_seqlens,
                                  batch.max_seqlen, batch.max_seqlen)


def torch_flash_varlen(query, key, value, batch: PackedBatch):
    # The kernel behind torch's nested-tensor SDPA, called as torch/nested calls it.
    import torch

    return torch.ops.aten._flash_attention_forward(
        query, key, value, batch.cu_seqlens, batch.cu_seqlens, batch.max_seqlen,
        batch.max_seqlen, 0.0, False, False)[0]


def torch_efficient_varlen(query, key, value, batch: PackedBatch):
    import torch

    return torch.ops.aten._efficient_attention_forward(
        query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0), None, batch.cu_seqlens,
        batch.cu_seqlens, batch.max_seqlen, batch.max_seqlen, 0.0, 0, False)[0].squeeze(0)


BACKENDS = {BY_LENGTH: by_length, BY_BOUNDARIES: by_boundaries, FLASH_ATTN: flash_attn_varlen,
            TORCH_FLASH: torch_flash_varlen, TORCH_EFFICIENT: torch_efficient_varlen}


def candidates(device: str, dtype: str, flash_attn: bool) -> list:
    """The backends worth trying here, best first; the last always works."""
    if not device.startswith("cuda"):
        return [BY_LENGTH]
    half = dtype in ("float16", "bfloat16")
    found = [FLASH_ATTN] if flash_attn and half else []
    found += [TORCH_FLASH] if half else []
    return found + [TORCH_EFFICIENT, BY_LENGTH]


def choose(device: str, dtype: str, flash_attn: bool) -> str:
    """The first candidate that runs here and agrees with ``sdpa_by_length`` on a
    small packed batch; a kernel missing for this GPU or torch build is skipped."""
    options = candidates(device, dtype, flash_attn)
    for name in options[:-1]:
        try:
            error = self_check(name, device, dtype)
        except Exception as exc:  # noqa: BLE001 - a kernel can fail in many ways
            log.info("attention backend %s unavailable (%s: %s)", name, type(exc).__name__,
                     str(exc)[:200])
            continue
        if error <= 2e-2:
            return name
        log.warning("attention backend %s is off by %.3g on a test batch; not used",
                    name, error)
    return options[-1]


def self_check(name: str, device: str, dtype: str) -> float:
    """Largest difference between ``name`` and ``sdpa_by_length`` on three rows."""
    import torch

    from worker.inference import layout as layouts

    plan = layouts.plan([37, 64, 37], [True, False, False])
    generator = torch.Generator(device=device).manual_seed(0)
    # Strided views of one (tokens, 3, heads, dim) tensor, as attend hands them over.
    q, k, v = torch.randn(plan.total, 3, 2, 64, generator=generator, device=device,
                          dtype=getattr(torch, dtype)).unbind(1)
    cu = torch.tensor(plan.cu_seqlens(), dtype=torch.int32, device=device)
    batch = PackedBatch(tuple(plan.groups()), None, None, name, cu,
                        max(row.length for row in plan.rows))
    with torch.inference_mode():
        got = BACKENDS[name](q, k, v, batch).float()
        want = by_length(q, k, v, batch).float()
    return float((got - want).abs().max())
