"""DTYPE: half-precision models with positions, time grid and time embedding in fp32,
and the numerics a loaded model reports."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from settings import SettingsError, load_settings
from worker.inference import models, precision, references, synthesis
from worker.services import voices

FRAMES = 3000     # past fp16's 2,048 exact integers


@pytest.fixture(scope="module")
def fp32_model(tiny_models):
    spec = models.model_spec(load_settings({**tiny_models, "DEVICE": "cpu"}))
    return models.load(spec)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_positions_of_a_long_item_stay_distinct_and_exact_in_half_precision(fp32_model, dtype):
    rotary = fp32_model.model.transformer.rotary_embed
    positions = torch.arange(FRAMES)
    exact = precision.rotary_angles(rotary, positions)
    half = precision.apply(copy.deepcopy(fp32_model.model), dtype, "cpu").transformer
    assert half.proj_out.weight.dtype == getattr(torch, dtype)
    assert half.rotary_embed.inv_freq.dtype == torch.float32
    angles = precision.rotary_angles(half.rotary_embed, positions)
    assert torch.equal(angles, exact)
    assert len(torch.unique(angles[:, 0])) == FRAMES    # the first frequency is 1: the position
    # x_transformers' own forward, on the restored buffer, forms the same angles.
    freqs, _ = half.rotary_embed.forward_from_seq_len(FRAMES)
    assert torch.equal(freqs[0], exact)
    cos, sin = precision.rotary_tables(half.rotary_embed, positions, getattr(torch, dtype))
    assert torch.equal(cos, exact.cos().to(cos.dtype))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_a_plain_cast_loses_the_positions_the_fix_keeps(fp32_model, dtype):
    """What the package's loader does: the whole model cast, rotary buffer included."""
    cast = copy.deepcopy(fp32_model.model).to(getattr(torch, dtype)).transformer
    freqs, _ = cast.rotary_embed.forward_from_seq_len(FRAMES)
    assert len(torch.unique(freqs[0, :, 0])) < FRAMES
    # the fp32 frequencies are recovered from the rounded buffer
    recovered = precision.rotary_inv_freq(cast.rotary_embed)
    assert torch.equal(recovered, fp32_model.model.transformer.rotary_embed.inv_freq)


def test_time_grid_and_sinusoid_are_fp32_and_the_packages_own(fp32_model):
    from f5_tts.model.utils import get_epss_timesteps

    times = precision.time_grid(7, "cpu")
    assert times.dtype == torch.float32
    epss = get_epss_timesteps(7, device="cpu", dtype=torch.float32)
    assert torch.equal(times, epss + synthesis.SWAY_SAMPLING * (torch.cos(torch.pi / 2 * epss)
                                                                - 1 + epss))
    time_embed = fp32_model.model.transformer.time_embed
    hidden = precision.time_hidden(time_embed, times)
    assert hidden.dtype == torch.float32
    for step in range(len(times)):
        assert torch.equal(hidden[step:step + 1], time_embed.time_embed(times[step:step + 1]))
    # The package forms the grid in the model's dtype: in fp16 the sway-sampled
    # times are up to 5e-4 off, and the sinusoid of 1000 * t up to 0.46 off.
    half = get_epss_timesteps(32, device="cpu", dtype=torch.half)
    half = half + synthesis.SWAY_SAMPLING * (torch.cos(torch.pi / 2 * half) - 1 + half)
    exact = precision.time_grid(32, "cpu")
    assert (time_embed.time_embed(half).float()
            - precision.time_hidden(time_embed, exact)).abs().max() > 0.1
    assert torch.equal(precision.time_hidden(time_embed, exact), time_embed.time_embed(exact))


def test_dtype_setting_defaults_by_device_and_rejects_others(tiny_models):
    assert load_settings({}).dtype == "auto"
    assert precision.resolve_dtype("auto", "cuda") == "float16"
    assert precision.resolve_dtype("auto", "cpu") == "float32"
    assert precision.resolve_dtype("bfloat16", "cuda:0") == "bfloat16"
    assert load_settings({"DTYPE": "BFloat16"}).dtype == "bfloat16"
    with pytest.raises(SettingsError, match="DTYPE"):
        load_settings({"DTYPE": "float64"})
    spec = models.model_spec(load_settings({**tiny_models, "DEVICE": "cpu", "DTYPE": "bfloat16"}))
    assert spec.dtype == "bfloat16" and not spec.cuda_graphs
    graphs_on_cpu = load_settings({"DEVICE": "cpu", "CUDA_GRAPHS": "true"})
    assert graphs_on_cpu.cuda_graphs and not models.model_spec(graphs_on_cpu).cuda_graphs


def test_a_bfloat16_model_speaks_and_reports_its_numerics(tiny_models):
    settings = load_settings({**tiny_models, "DEVICE": "cpu", "DTYPE": "bfloat16"})
    before = models.configured_numerics(settings)
    loaded = models.load(models.model_spec(settings))
    assert next(loaded.model.parameters()).dtype == torch.bfloat16
    numerics = loaded.numerics()
    assert numerics == {"device": "cpu", "gpu": None, "torch": torch.__version__,
                        "dtype": "bfloat16", "attention": "sdpa_by_length", "compile": False,
                        "graphs": False}
    assert before == {**numerics, "loaded": False}
    reference = voices.package_reference()
    ref_text = references.package_ref_text(reference.ref_text)
    with torch.inference_mode():
        ref = references.prepare_reference(loaded, reference.samples, reference.sample_rate)
        plans = synthesis.plan_chunks(loaded, ref, ref_text, ["A short test."], 3, 1.0)
        mel = synthesis.sample_batch(loaded, ref, plans, 4, 2.0)[0]
    assert mel.dtype == torch.float32 and bool(torch.isfinite(mel).all())
    assert np.isfinite(synthesis._vocode(loaded, mel, ref.rms)).all()
