"""The sampler and the packed path's batching: items of different jobs in one
batch, no host syncs in the Euler loop, and the CUDA graphs' padding and
static buffers (run eagerly on the CPU, where no graph can be captured)."""
from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest
import torch

from settings import load_settings
from tests.tiny_models import lively_env
from worker.inference import (
    attention,
    engine,
    graphs,
    layout,
    packed_dit,
    precision,
    references,
    synthesis,
)
from worker.services import voices


@pytest.fixture(scope="module")
def loaded(tiny_models, tmp_path_factory):
    env = lively_env(tiny_models, tmp_path_factory.mktemp("sampler"))
    return engine.get_model(load_settings(env))


@pytest.fixture(scope="module")
def two_voices(loaded):
    """The package's reference, and a second voice: its first 2.5 s, louder."""
    voice = voices.package_reference()
    first = references.prepared_reference(loaded, voice.samples, voice.sample_rate,
                                          voice.ref_text)
    clip = 1.5 * voice.samples[:int(2.5 * voice.sample_rate)]
    second = references.prepare_reference(loaded, clip, voice.sample_rate)
    return (first, references.package_ref_text(voice.ref_text)), (second, "Some call me. ")


def mixed_plans(loaded, two_voices) -> list:
    """Four chunks of two jobs: two references, three cfg strengths (one unguided),
    and two chunks of the same length from different jobs."""
    (ref_a, text_a), (ref_b, text_b) = two_voices
    a = synthesis.plan_chunks(loaded, ref_a, text_a, ["First job, first chunk.",
                                                      "First job, its second chunk here."], 7, 1.0)
    b = synthesis.plan_chunks(loaded, ref_b, text_b, ["Second job speaks now.", "Done."], 9, 1.0)
    plans = [dataclasses.replace(a[0], ref=ref_a, cfg_strength=2.0),
             dataclasses.replace(a[1], ref=ref_a, cfg_strength=1.3),
             dataclasses.replace(b[0], ref=ref_b, cfg_strength=0.0),
             dataclasses.replace(b[1], ref=ref_b, cfg_strength=2.0,
                                 frames=a[0].frames)]      # the same length as a[0]
    return plans


def test_chunks_of_different_jobs_in_one_batch_come_out_as_alone(loaded, two_voices):
    plans = mixed_plans(loaded, two_voices)
    with torch.inference_mode():
        together = synthesis.sample_batch(loaded, None, plans, 4, 2.0)
        alone = [synthesis.sample_batch(loaded, None, [plan], 4, 2.0)[0] for plan in plans]
    for plan, batched, single in zip(plans, together, alone):
        assert batched.shape == (plan.frames - plan.ref.frames, loaded.model.num_channels)
        assert torch.equal(batched, single)     # the same bits, not only close
    assert not torch.equal(together[0], together[3][:len(together[0])])


@pytest.mark.parametrize("shards", [2, 3])
def test_rows_over_threads_give_the_same_bits_as_one_packed_row(loaded, two_voices, shards):
    """Each row thread runs one intra-op thread; so does the whole row here (a
    kernel's result can follow its thread count: 3 threads gave other bits)."""
    plans = mixed_plans(loaded, two_voices)
    before = torch.get_num_threads()
    pool = packed_dit.row_pool(shards)
    try:
        split = dataclasses.replace(loaded, shards=shards, shard_pool=pool)
        whole = dataclasses.replace(loaded, shards=1, shard_pool=None)
        with torch.inference_mode():
            threaded = synthesis.sample_batch(split, None, plans, 3, 2.0)
            torch.set_num_threads(1)
            single = synthesis.sample_batch(whole, None, plans, 3, 2.0)
        for a, b in zip(threaded, single):
            assert torch.equal(a, b)
    finally:
        torch.set_num_threads(before)
        pool.shutdown()


def test_row_pool_threads_use_one_core_each_and_leave_the_default_alone():
    import threading

    before = torch.get_num_threads()
    pool = packed_dit.row_pool(2)
    try:
        assert [pool.submit(torch.get_num_threads).result() for _ in range(4)] == [1, 1, 1, 1]
        later = []
        thread = threading.Thread(target=lambda: later.append(torch.get_num_threads()))
        thread.start()
        thread.join()
        assert torch.get_num_threads() == before and later == [before]
    finally:
        pool.shutdown()


def test_a_plan_without_a_reference_takes_the_batchs(loaded, two_voices):
    plans = mixed_plans(loaded, two_voices)
    (ref_a, _), _ = two_voices
    own = dataclasses.replace(plans[0], ref=None, cfg_strength=None)
    with torch.inference_mode():
        assert torch.equal(synthesis.sample_batch(loaded, ref_a, [own], 4, 2.0)[0],
                           synthesis.sample_batch(loaded, None, plans[:1], 4, 2.0)[0])
        with pytest.raises(ValueError, match="reference"):
            synthesis.sample_batch(loaded, None, [own], 4, 2.0)


def host_syncs(loaded, plans, steps: int) -> int:
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as prof:
        synthesis.sample_batch(loaded, None, plans, steps, 2.0)
    names = [event.name for event in prof.events()]
    return sum(name in ("aten::item", "aten::_local_scalar_dense") for name in names)


def test_the_euler_loop_makes_no_host_sync(loaded, two_voices):
    plans = mixed_plans(loaded, two_voices)
    # The package path (torchdiffeq) makes three per step; the loop here none:
    # the count does not grow with the steps.
    assert host_syncs(loaded, plans, 2) == host_syncs(loaded, plans, 7)


def test_graph_padding_falls_back_to_eager_on_the_cpu_with_the_same_audio(
        loaded, two_voices, caplog):
    plans = mixed_plans(loaded, two_voices)
    # As on CUDA: one packed row (no row threads), graphs on.
    padded = dataclasses.replace(loaded, graphs=graphs.BlockGraphs(loaded.model.transformer),
                                 shards=1, shard_pool=None)
    with torch.inference_mode():
        plain = synthesis.sample_batch(loaded, None, plans, 3, 2.0)
        with caplog.at_level(logging.WARNING):
            eager = synthesis.sample_batch(padded, None, plans, 3, 2.0)
    assert "CUDA graph capture failed" in caplog.text and not padded.graphs.active
    for before, after in zip(plain, eager):
        assert torch.equal(before, after)       # the dummy row changed nothing
    assert padded.numerics()["graphs"] is False


def static_case(loaded, lengths, guided, seed):
    """Eager inputs for a layout, and the same layout padded to its bucket."""
    transformer = loaded.model.transformer
    generator = torch.Generator().manual_seed(seed)
    mel = loaded.model.num_channels
    conds = [torch.randn(1, 20, mel, generator=generator) for _ in lengths]
    texts = [torch.randint(0, 30, (1, 8 + index), generator=generator)
             for index in range(len(lengths))]
    plan = layout.plan(lengths, guided)
    bucket = layout.padded(plan, layout.bucket_length(plan.total))
    eager = packed_dit.prepare(transformer, plan, texts, conds, attention.BY_LENGTH,
                               torch.float32)
    varlen = packed_dit.prepare(transformer, bucket, texts, conds, attention.BY_BOUNDARIES,
                                torch.float32)
    hidden = torch.randn(1, plan.total, transformer.dim, generator=generator)
    extra = torch.randn(1, bucket.total - plan.total, transformer.dim, generator=generator)
    return plan, eager, varlen, hidden, torch.cat((hidden, extra), dim=1)


def test_static_buffers_reused_for_another_layout_give_each_row_its_eager_output(loaded):
    """What a replayed graph computes: the block stack over the static buffers,
    refilled for a second layout of the same bucket (fewer rows, other lengths)."""
    transformer = loaded.model.transformer
    with torch.inference_mode():
        t = precision.time_embedding(transformer.time_embed, precision.time_hidden(
            transformer.time_embed, torch.tensor([0.4])), torch.float32)
        first = static_case(loaded, [90, 70, 90], [True, True, False], 1)
        second = static_case(loaded, [100, 60], [True, False], 2)
        assert layout.bucket_length(first[0].total) == layout.bucket_length(second[0].total)
        key = (first[2].layout.total, graphs.seqlen_bound(256, first[2].layout.total))
        static = graphs.StaticInputs(transformer, key, first[2])
        for plan, eager, varlen, hidden, padded_hidden in (first, second):
            static.load(varlen.batch)
            static.feed(padded_hidden, t)
            out = static.run(transformer)[0]
            want = packed_dit.run_blocks(transformer, hidden, t, eager.batch)[0]
            assert torch.equal(out[:plan.total], want)


def test_configured_numerics_need_no_model(tiny_models):
    from worker.inference import models

    numerics = models.configured_numerics(load_settings({**tiny_models, "DEVICE": "cpu"}))
    assert numerics["loaded"] is False and numerics["dtype"] == "float32"
    assert numerics["attention"] == attention.BY_LENGTH and numerics["graphs"] is False
    assert set(numerics) == {"device", "gpu", "torch", "dtype", "attention", "compile",
                             "graphs", "loaded"}


def test_cuda_backends_are_tried_best_first_and_the_cpu_has_one():
    assert attention.candidates("cpu", "float16", True) == [attention.BY_LENGTH]
    assert attention.candidates("cuda", "float16", True) == [
        attention.FLASH_ATTN, attention.TORCH_FLASH, attention.TORCH_EFFICIENT,
        attention.BY_LENGTH]
    assert attention.candidates("cuda", "float32", True) == [attention.TORCH_EFFICIENT,
                                                             attention.BY_LENGTH]
    # A backend that cannot run is skipped (here: CUDA kernels on a CPU-only torch).
    if not torch.cuda.is_available():
        assert attention.choose("cpu", "float32", False) == attention.BY_LENGTH


def test_generated_audio_is_finite_and_seeded(loaded):
    voice = voices.package_reference()
    first = synthesis.generate(loaded, voice.samples, voice.sample_rate, voice.ref_text,
                               "A seeded sentence.", seed=3, nfe_step=4)
    again = synthesis.generate(loaded, voice.samples, voice.sample_rate, voice.ref_text,
                               "A seeded sentence.", seed=3, nfe_step=4)
    assert np.isfinite(first.samples).all() and np.array_equal(first.samples, again.samples)


def test_other_backbones_take_the_packages_forward_one_item_at_a_time(loaded, two_voices):
    """The path for backbones other than DiT, run here on the DiT (it has the same
    forward contract): values as the packed path's, within float rounding."""
    plans = mixed_plans(loaded, two_voices)[1:3]    # a guided and an unguided plan
    unpacked = dataclasses.replace(loaded, packed=False)
    with torch.inference_mode():
        ours = synthesis.sample_batch(loaded, None, plans, 3, 2.0)
        package = synthesis.sample_batch(unpacked, None, plans, 3, 2.0)
    for a, b in zip(ours, package):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
