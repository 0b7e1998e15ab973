"""Flow-matching sampling of a batch of items: the math of the package's
``CFM.sample`` (f5-tts 1.1) with its own Euler loop.

torchdiffeq's fixed-grid solver, which ``CFM.sample`` uses, compares time
tensors on the host three times a step (each a device sync); here the time
grid, its steps and the time embedding's sinusoids are made once before the
loop, which then only launches work. Euler's update and classifier-free
guidance are the solver's and the package's own arithmetic, operation for
operation, so the bits are the package path's on the CPU in fp32.

Every item brings its own reference (mel and length), text, seed and
``cfg_strength``: the chunks of different jobs can share one batch, and each
item comes out as it would alone. Items whose ``cfg_strength`` is below
1e-5 get no unconditional row, as in ``CFM.sample``. The ODE state is kept in
fp32 in every model dtype; the model sees it in its own.
"""
from __future__ import annotations

from dataclasses import dataclass

from worker.inference import layout as layouts
from worker.inference import packed_dit, precision

MAX_FRAMES = 65536        # CFM.sample's cap on one item's length
GUIDANCE_FLOOR = 1e-5     # CFM.sample: below this, no classifier-free guidance


@dataclass(frozen=True)
class SampleItem:
    tokens: list          # the model's text units, reference transcript included
    frames: int           # wanted length, reference included
    seed: int
    cond: object          # (1, ref_len, n_mels) reference mel, in the model's dtype
    ref_frames: int       # where the generated part starts
    cfg_strength: float = 2.0

    @property
    def guided(self) -> bool:
        return self.cfg_strength >= GUIDANCE_FLOOR


def duration(item: SampleItem) -> int:
    """CFM.sample's length rule: at least the text or the reference plus one frame."""
    ref_len = item.cond.shape[1]
    return min(max(max(len(item.tokens), ref_len) + 1, item.frames), MAX_FRAMES)


def sample(loaded, items: list, steps: int) -> list:
    """Generated mels (frames x n_mels, fp32), one per item, in order. A backbone
    other than DiT runs one item at a time through the package's own forward."""
    if not loaded.packed:
        return [_sample_alone(loaded, item, steps) for item in items]
    import torch

    model, dtype = loaded.model, next(loaded.model.parameters()).dtype
    lengths = [duration(item) for item in items]
    plan = layouts.plan(lengths, [item.guided for item in items])
    graphs = loaded.graphs if loaded.shard_pool is None else None   # CUDA: no row threads
    if graphs is not None:
        plan = graphs.pad(plan)
    parts = layouts.split(plan, loaded.shards) if loaded.shard_pool is not None else [plan]
    plan = layouts.joined(parts)
    device = items[0].cond.device
    texts = [_token_ids(model, item.tokens, device) for item in items]
    inputs = [packed_dit.prepare(model.transformer, part, texts, [item.cond for item in items],
                                 loaded.attention, dtype) for part in parts]
    blocks = graphs.runner(inputs[0]) if graphs is not None else None
    token_index = torch.tensor(plan.token_index(), dtype=torch.long, device=device)
    guidance = _guidance(plan, items, device)

    def predict(t, state):
        rows = state.index_select(0, token_index)
        rows = rows if rows.dtype == dtype else rows.to(dtype)
        pred = packed_dit.forward_parts(model.transformer, inputs, rows, t, loaded.shard_pool,
                                        blocks)
        return pred if pred.dtype == torch.float32 else pred.float()

    state = euler(model.transformer, predict, _noise(items, lengths, model.num_channels, dtype),
                  steps, guidance, dtype)
    return _finish(items, lengths, state)


def euler(transformer, predict, state, steps: int, guidance, dtype):
    """Euler steps from noise to mel on CFM.sample's time grid (precision.time_grid).
    ``predict(t_embedding, state)`` is the model on every packed row; ``guidance``
    turns its rows into each item's flow. No host sync inside the loop."""
    times = precision.time_grid(steps, state.device)
    deltas = times[1:] - times[:-1]
    hidden = precision.time_hidden(transformer.time_embed, times[:-1])
    for step in range(steps):
        t = precision.time_embedding(transformer.time_embed, hidden[step:step + 1], dtype)
        state = state + deltas[step] * guidance(predict(t, state))
    return state


@dataclass(frozen=True)
class _Guidance:
    """Packed predictions -> each item's flow: ``pred + (pred - null) * cfg``
    (CFM.sample's update) where guided, the conditional prediction elsewhere."""
    cond_index: object
    uncond_index: object = None   # None: no item is guided
    strength: object = None       # (frames, 1) cfg_strength per state frame
    guided: object = None         # (frames, 1) bool, only when some items are unguided

    def __call__(self, pred):
        import torch

        cond = pred.index_select(0, self.cond_index)
        if self.uncond_index is None:
            return cond
        null = pred.index_select(0, self.uncond_index)
        flow = cond + (cond - null) * self.strength
        return flow if self.guided is None else torch.where(self.guided, flow, cond)


def _guidance(plan: layouts.Layout, items: list, device) -> _Guidance:
    import torch

    cond_index = torch.tensor(plan.branch_index(False), dtype=torch.long, device=device)
    if not any(item.guided for item in items):
        return _Guidance(cond_index)
    per_frame = [(item.cfg_strength, item.guided) for item, length in zip(items, plan.lengths)
                 for _ in range(length)]
    strength = torch.tensor([[value] for value, _ in per_frame], dtype=torch.float32,
                            device=device)
    guided = None
    if not all(item.guided for item in items):
        guided = torch.tensor([[flag] for _, flag in per_frame], device=device)
    return _Guidance(cond_index,
                     torch.tensor(plan.branch_index(True), dtype=torch.long, device=device),
                     strength, guided)


def _token_ids(model, tokens: list, device):
    from f5_tts.model.utils import list_str_to_idx

    return list_str_to_idx([tokens], model.vocab_char_map).to(device)


def _noise(items: list, lengths: list, channels: int, dtype):
    """Each item's starting noise from its own generator seeded with its seed (CFM.sample
    reseeds the global RNG instead, which races with other threads), end to end, fp32."""
    import torch

    noise = []
    for item, length in zip(items, lengths):
        device = item.cond.device
        generator = torch.Generator(device=device).manual_seed(item.seed)
        noise.append(torch.randn(length, channels, generator=generator, device=device,
                                 dtype=dtype))
    state = noise[0] if len(noise) == 1 else torch.cat(noise)
    return state if state.dtype == torch.float32 else state.float()


def _finish(items: list, lengths: list, state) -> list:
    """Each item's frames after its reference; the reference's own frames (CFM.sample
    puts the reference mel back over them) where the generated part starts inside it."""
    import torch

    mels, offset = [], 0
    for item, length in zip(items, lengths):
        frames = state[offset:offset + length]
        ref_len = item.cond.shape[1]
        reference = torch.nn.functional.pad(item.cond[0], (0, 0, 0, length - ref_len))
        inside = torch.arange(length, device=state.device)[:, None] < ref_len
        mels.append(torch.where(inside, reference, frames)[item.ref_frames:])
        offset += length
    return mels


def _sample_alone(loaded, item: SampleItem, steps: int):
    """The package's DiT.forward contract for other backbones, one item (no mask);
    no text cache, so nothing is left on the model between samplings."""
    import torch

    model, dtype = loaded.model, next(loaded.model.parameters()).dtype
    length = duration(item)
    text = _token_ids(model, item.tokens, item.cond.device)
    cond = torch.nn.functional.pad(item.cond, (0, 0, 0, length - item.cond.shape[1]))
    times = precision.time_grid(steps, item.cond.device)
    state = _noise([item], [length], model.num_channels, dtype)
    for step in range(steps):
        pred = model.transformer(x=state.unsqueeze(0).to(dtype), cond=cond, text=text,
                                 time=times[step].to(dtype), mask=None, drop_audio_cond=False,
                                 drop_text=False, cfg_infer=item.guided).float()
        flow = pred[0] + (pred[0] - pred[1]) * item.cfg_strength if item.guided else pred[0]
        state = state + (times[step + 1] - times[step]) * flow
    return _finish([item], [length], state)[0]
