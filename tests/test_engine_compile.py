"""TORCH_COMPILE's code path, run on the CPU with the tiny model.

The worker compiles on CUDA only (model_spec); compile_and_warm_up itself is
device-agnostic, so these tests call it on a CPU model, where inductor builds
C++ with the machine's compiler instead of Triton kernels. Each test loads
its own model: compiling changes the model it is given.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from settings import load_settings
from worker.inference import compile as compiling
from worker.inference import models, synthesis
from worker.services import voices

pytestmark = pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                                reason="inductor needs a C++ compiler on the CPU")


@pytest.fixture
def fresh(tiny_models):
    torch._dynamo.reset()
    spec = models.model_spec(load_settings({**tiny_models, "DEVICE": "cpu"}))
    loaded = models.load(spec)
    yield loaded
    if loaded.shard_pool is not None:
        loaded.shard_pool.shutdown()
    torch._dynamo.reset()


def speak(loaded, text):
    reference = voices.package_reference()
    return synthesis.generate(loaded, reference.samples, reference.sample_rate,
                               reference.ref_text, text, seed=4, nfe_step=4).samples


TEXTS = ["A short one.", "A somewhat longer sentence for a second length.",
         "First of two chunks, long enough to need its own. " * 3 + "And the second."]


def test_compiled_model_speaks_as_the_eager_one_with_one_graph_for_every_length(fresh):
    eager = [speak(fresh, text) for text in TEXTS]
    assert compiling.compile_and_warm_up(fresh, synthesis.warm_up) is True
    graphs = dict(torch._dynamo.utils.counters["stats"])
    assert graphs.get("unique_graphs", 0) >= 2  # the norm's and the feed-forward's
    compiled = [speak(fresh, text) for text in TEXTS]
    # No job compiled anything: the warm-up's dynamic graphs served every length.
    assert dict(torch._dynamo.utils.counters["stats"]) == graphs
    for before, after in zip(eager, compiled):
        assert before.shape == after.shape
        np.testing.assert_allclose(after, before, atol=2e-4)


def test_a_failed_compile_leaves_the_model_eager_and_working(fresh, monkeypatch, caplog):
    # A real failure: inductor pointed at a C++ compiler that does not exist,
    # as a GPU image without gcc fails for Triton.
    import torch._inductor.config as inductor_config

    monkeypatch.setattr(inductor_config.cpp, "cxx", ("/nonexistent/c++",))
    before = speak(fresh, TEXTS[0])
    assert compiling.compile_and_warm_up(fresh, synthesis.warm_up) is False
    assert "torch.compile failed" in caplog.text
    for block in fresh.model.transformer.transformer_blocks:
        assert block.attn_norm.forward.__func__ is type(block.attn_norm).forward
        assert block.ff.forward.__func__ is type(block.ff).forward
    assert np.array_equal(speak(fresh, TEXTS[0]), before)
