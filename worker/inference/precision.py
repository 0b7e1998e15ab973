"""Model precision (the DTYPE setting) with positions and time kept exact.

Casting the whole model to half precision, as the package's loader does on
CUDA, also casts rotary's ``inv_freq``: positions times frequencies are then
formed in fp16, exact only up to 2,048 frames and up to a radian off beyond;
in bf16 most positions of a long item collapse onto their neighbours. The
sampler's time grid and the sinusoidal time embedding suffer the same way
near t = 1. Training formed all three in fp32, so here they are formed in
fp32 whatever the model's dtype; only their results (cos/sin values, the
time embedding's input) are handed to the model in its dtype.
"""
from __future__ import annotations

DTYPES = ("float16", "bfloat16", "float32")
SWAY_SAMPLING = -1.0
ROTARY_BASE = 10000.0     # DiT builds x_transformers' RotaryEmbedding(dim_head) with defaults
TIME_SCALE = 1000         # SinusPositionEmbedding's default scale


def resolve_dtype(setting: str, device: str) -> str:
    """DTYPE: float16 on CUDA, float32 on the CPU, unless set."""
    if setting in DTYPES:
        return setting
    return "float16" if device.startswith("cuda") else "float32"


def torch_dtype(name: str):
    import torch

    return getattr(torch, name)


def apply(model, name: str, device: str):
    """Move ``model`` to ``device`` in dtype ``name``, keeping every rotary
    ``inv_freq`` in fp32 (x_transformers then forms positions in fp32 too)."""
    import torch

    saved = {module: rotary_inv_freq(module) for module in model.modules()
             if isinstance(getattr(module, "inv_freq", None), torch.Tensor)}
    model = model.to(device=device, dtype=torch_dtype(name))
    for module, inv_freq in saved.items():
        module.inv_freq = inv_freq.to(device)
    return model


def rotary_inv_freq(rotary):
    """The rotary frequencies in fp32: the buffer itself when it is fp32, else
    recomputed (a half-precision buffer has lost digits) and checked against it."""
    import torch

    buffer = rotary.inv_freq
    if buffer.dtype == torch.float32:
        return buffer
    dim = 2 * buffer.numel()
    exact = 1.0 / (ROTARY_BASE ** (torch.arange(0, dim, 2, device=buffer.device).float() / dim))
    if not torch.equal(exact.to(buffer.dtype), buffer):
        raise ValueError("the rotary embedding's frequencies are not DiT's defaults; "
                         "load the model in float32")
    return exact


def rotary_tables(rotary, positions, dtype):
    """cos and sin of each position's rotary angles, formed in fp32 and handed
    over in ``dtype``, laid out as x_transformers lays them: each frequency twice
    in a row, the sine signed for the pair swap of ``rotate_half``.

    Returns (cos, sin), each (len(positions), dim_head)."""
    import torch

    angles = rotary_angles(rotary, positions)
    sign = torch.tensor([-1.0, 1.0], device=angles.device).repeat(angles.shape[-1] // 2)
    return angles.cos().to(dtype), (angles.sin() * sign).to(dtype)


def rotary_angles(rotary, positions):
    """(len(positions), dim_head) angles in fp32, pairs repeated as x_transformers repeats them."""
    import torch

    inv_freq = rotary_inv_freq(rotary)
    positions = positions.to(device=inv_freq.device, dtype=torch.float32)
    freqs = positions[:, None] * inv_freq[None, :] / rotary.interpolation_factor
    return torch.stack((freqs, freqs), dim=-1).flatten(-2)


def time_grid(steps: int, device):
    """CFM.sample's time grid in fp32: EPSS for the step counts it covers, else
    uniform, then sway-sampled."""
    import torch
    from f5_tts.model.utils import get_epss_timesteps

    times = get_epss_timesteps(steps, device=device, dtype=torch.float32)
    return times + SWAY_SAMPLING * (torch.cos(torch.pi / 2 * times) - 1 + times)


def time_hidden(time_embed, times):
    """The sinusoidal part of ``TimestepEmbedding`` for every time at once, in
    fp32: (len(times), freq_dim). Its MLP runs per step (``time_embedding``)."""
    import math

    import torch

    half = time_embed.time_embed.dim // 2
    scale = math.log(10000) / (half - 1)
    freqs = torch.exp(torch.arange(half, device=times.device).float() * -scale)
    angles = TIME_SCALE * times.float().unsqueeze(1) * freqs.unsqueeze(0)
    return torch.cat((angles.sin(), angles.cos()), dim=-1)


def time_embedding(time_embed, hidden, dtype):
    """``TimestepEmbedding``'s MLP on one step's fp32 sinusoid, in the model's dtype."""
    if hidden.dtype != dtype:
        hidden = hidden.to(dtype)
    return time_embed.time_mlp(hidden)
