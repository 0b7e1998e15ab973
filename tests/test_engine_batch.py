"""The batched generation path and the reference cache, with the tiny models."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from settings import load_settings
from worker.inference import engine, packed_dit, references, synthesis
from worker.media import track
from worker.services import voices

LONG_TEXT = " ".join(
    f"Sentence number {word} tells a small story about the sea, the wind and the light."
    for word in ("one", "two", "three", "four", "five", "six"))


@pytest.fixture(scope="module")
def lively_models(tiny_models, tmp_path_factory):
    """The tiny checkpoint with its zero-initialised layers (AdaLN gates, output
    projection) made random: with them at zero, attention and the flow do
    nothing, and batch padding could not change a result even if it leaked."""
    from safetensors.torch import load_file, save_file

    state = load_file(tiny_models["F5TTS_CKPT_FILE"])
    generator = torch.Generator().manual_seed(77)
    for key, value in state.items():
        if value.is_floating_point() and value.numel() > 1 and not bool(value.any()):
            state[key] = 0.2 * torch.randn(value.shape, generator=generator)
    path = tmp_path_factory.mktemp("lively") / "model_lively.safetensors"
    save_file(state, str(path))
    return {**tiny_models, "F5TTS_CKPT_FILE": str(path)}


@pytest.fixture
def loaded(lively_models):
    return engine.get_model(load_settings({**lively_models, "DEVICE": "cpu"}))


@pytest.fixture(scope="module")
def reference():
    return voices.package_reference()


def speak(loaded, reference, text, seed):
    return synthesis.generate(loaded, reference.samples, reference.sample_rate,
                               reference.ref_text, text, seed=seed, nfe_step=4)


def plans_for(loaded, reference, texts, seed=11):
    ref = references.prepared_reference(loaded, reference.samples, reference.sample_rate,
                                        reference.ref_text)
    return ref, synthesis.plan_chunks(loaded, ref, reference.ref_text, texts, seed, 1.0)


def test_long_text_runs_as_one_batch_and_reproduces(loaded, reference, monkeypatch):
    batch_sizes = []
    real = synthesis.sample_batch

    def counting(loaded, ref, plans, steps, cfg_strength):
        batch_sizes.append(len(plans))
        return real(loaded, ref, plans, steps, cfg_strength)

    monkeypatch.setattr(synthesis, "sample_batch", counting)
    first = speak(loaded, reference, LONG_TEXT, seed=5)
    assert len(first.chunks) >= 3 and batch_sizes == [len(first.chunks)]
    second = speak(loaded, reference, LONG_TEXT, seed=5)
    assert np.array_equal(first.samples, second.samples)
    other = speak(loaded, reference, LONG_TEXT, seed=6)
    assert not np.array_equal(first.samples[:len(other.samples)],
                              other.samples[:len(first.samples)])


def test_a_chunk_does_not_depend_on_its_batch(loaded, reference):
    texts = ["Hello there, this is a test.", "A second and clearly longer chunk of text here.",
             "Third one."]
    ref, plans = plans_for(loaded, reference, texts)
    with torch.inference_mode():
        together = synthesis.sample_batch(loaded, ref, plans, 4, 2.0)
        alone = [synthesis.sample_batch(loaded, ref, [plan], 4, 2.0)[0] for plan in plans]
        pair = synthesis.sample_batch(loaded, ref, plans[1:], 4, 2.0)
    for batched, single in zip(together, alone):
        assert batched.shape == single.shape
        torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-4)
    for batched, single in zip(pair, alone[1:]):
        torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-4)


def test_splitting_into_more_batches_gives_the_same_audio(loaded, reference, monkeypatch):
    one_batch = speak(loaded, reference, LONG_TEXT, seed=9)
    monkeypatch.setattr(synthesis, "MAX_BATCH_CHUNKS", 2)
    several = speak(loaded, reference, LONG_TEXT, seed=9)
    assert len(one_batch.samples) == len(several.samples)
    np.testing.assert_allclose(one_batch.samples, several.samples, atol=1e-4)


def test_one_chunk_matches_the_package_sampler(loaded, reference):
    """Guards the copy of CFM.sample's math against a change in the package. Not
    bit for bit: the packed rows run in threads of one intra-op thread each, and
    a kernel's reduction order follows its thread count."""
    ref, (plan,) = plans_for(loaded, reference, ["Hello there, this is a test."], seed=21)
    assert reference.sample_rate == loaded.sample_rate  # so no resampling to repeat here
    audio = torch.from_numpy(references.trim_silent_edges(reference.samples,
                                                          reference.sample_rate)).unsqueeze(0)
    rms = float(torch.sqrt(torch.mean(torch.square(audio))))
    if rms < references.TARGET_RMS:
        audio = audio * references.TARGET_RMS / rms
    with torch.inference_mode():
        ours = synthesis.sample_batch(loaded, ref, [plan], 4, 2.0)[0]
        theirs, _ = loaded.model.sample(cond=audio, text=[plan.tokens], duration=plan.frames,
                                        steps=4, cfg_strength=2.0,
                                        sway_sampling_coef=synthesis.SWAY_SAMPLING,
                                        seed=plan.seed)
    torch.testing.assert_close(ours, theirs[0, ref.frames:], atol=1e-4, rtol=1e-4)


def test_chunk_spans_are_ordered_and_cover_the_audio(loaded, reference):
    generation = speak(loaded, reference, LONG_TEXT, seed=3)
    chunks, rate = generation.chunks, generation.sample_rate
    assert len(chunks) >= 3
    assert chunks[0].start == 0.0
    assert chunks[-1].end == pytest.approx(len(generation.samples) / rate, abs=1 / rate)
    fade = track.CROSS_FADE_S
    for before, after in zip(chunks, chunks[1:]):
        assert before.start < before.end and after.start < after.end
        assert before.start <= after.start <= before.end <= after.end
        assert before.end - after.start == pytest.approx(fade, abs=2 / rate)
    assert " ".join(chunk.text for chunk in chunks) == LONG_TEXT


def test_reference_cache_is_hit_on_the_second_job(tts_worker, tiny_models):
    job = {"text": "Cached reference.", "seed": 1, "nfe_step": 4}
    assert "error" not in tts_worker(job)
    cache = engine.get_model(load_settings({**tiny_models, "DEVICE": "cpu"})).references
    hits, misses = cache.hits, cache.misses
    assert "error" not in tts_worker({**job, "text": "Another text, same voice."})
    assert (cache.hits, cache.misses) == (hits + 1, misses)
    # Another transcript for the same clip is another entry.
    # (a transcript no other test uses, so no earlier job has cached it)
    assert "error" not in tts_worker({**job, "ref_text": "Nature, for the cache test."})
    assert cache.misses == misses + 1


def test_reference_cache_is_bounded_and_least_recently_used_goes_first():
    cache = references.ReferenceCache(capacity=2)
    made = []

    def maker(name):
        return lambda: made.append(name) or name

    assert cache.get("a", maker("a")) == "a"
    assert cache.get("b", maker("b")) == "b"
    assert cache.get("a", maker("a")) == "a"      # a is now the most recent
    assert cache.get("c", maker("c")) == "c"      # evicts b
    assert len(cache) == 2 and made == ["a", "b", "c"]
    cache.get("b", maker("b"))
    assert made == ["a", "b", "c", "b"] and len(cache) == 2
    assert (cache.hits, cache.misses) == (1, 4)


def test_reference_key_covers_samples_rate_and_transcript():
    samples = np.linspace(-0.5, 0.5, 2400, dtype=np.float32)
    key = references.reference_key(samples, 24000, "text")
    assert key == references.reference_key(samples.copy(), 24000, "text")
    changed = samples.copy()
    changed[100] += 0.01
    assert key != references.reference_key(changed, 24000, "text")
    assert key != references.reference_key(samples, 16000, "text")
    assert key != references.reference_key(samples, 24000, "other text")


def test_sampling_keeps_no_state_on_the_model_even_when_it_fails(loaded, reference,
                                                                  monkeypatch):
    """A failure half way through sampling cannot be caused on purpose with real
    inputs; the first block is made to fail on its second call."""
    ref, plans = plans_for(loaded, reference, ["One chunk.", "Two chunks here."])
    transformer = loaded.model.transformer
    block = transformer.transformer_blocks[0]
    real_forward, calls = block.forward, []

    def failing(*args, **kwargs):
        calls.append(transformer.text_cond)
        if len(calls) == 2:
            raise RuntimeError("simulated failure")
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(block, "forward", failing)
    with torch.inference_mode(), pytest.raises(RuntimeError, match="simulated"):
        synthesis.sample_batch(loaded, ref, plans, 4, 2.0)
    assert calls == [None, None]
    assert transformer.text_cond is None and transformer.text_uncond is None


def test_reference_edges_are_trimmed_as_the_package_does():
    rate = 24000
    tone = (0.3 * np.sin(np.linspace(0, 2 * np.pi * 220, rate))).astype(np.float32)
    clip = np.concatenate([np.zeros(rate // 5, np.float32), tone,
                           np.full(3 * rate // 10, 1e-4, np.float32)])
    trimmed = references.trim_silent_edges(clip, rate)
    tail = int(references.REFERENCE_TAIL_S * rate)
    assert abs(len(trimmed) - tail - len(tone)) <= int(references.EDGE_STEP_S * rate)
    assert not trimmed[-tail:].any() and trimmed[:tail].any()
    silent = np.zeros(rate, np.float32)
    assert np.array_equal(references.trim_silent_edges(silent, rate), silent)


@pytest.mark.parametrize("given,used", [("Some text.", "Some text. "), ("Some text", "Some text. "),
                                        ("Some text. ", "Some text. "), ("你好。", "你好。")])
def test_reference_transcript_ends_as_the_package_makes_it(given, used):
    assert references.package_ref_text(given) == used


@pytest.mark.parametrize("guided", [True, False])
def test_packed_forward_gives_each_item_what_the_package_forward_gives_it_alone(
        loaded, guided):
    from worker.inference import layout, precision

    transformer = loaded.model.transformer
    generator = torch.Generator().manual_seed(5)
    lengths = [37, 52, 37]
    mel = loaded.model.num_channels
    x = [torch.randn(1, n, mel, generator=generator) for n in lengths]
    cond = torch.randn(1, 30, mel, generator=generator)
    texts = [torch.randint(0, 20, (1, count), generator=generator) for count in (12, 15, 9)]
    time = torch.tensor(0.3)
    plan = layout.plan(lengths, [guided] * 3)
    with torch.inference_mode():
        inputs = packed_dit.prepare(transformer, plan, texts, [cond] * 3, loaded.attention,
                                    torch.float32)
        state = torch.cat([item[0] for item in x])
        t = precision.time_embedding(transformer.time_embed,
                                     precision.time_hidden(transformer.time_embed,
                                                           time.reshape(1)), torch.float32)
        packed = packed_dit.forward(transformer, inputs, state.index_select(
            0, inputs.token_index), t)
        alone = [transformer(x=x[i], cond=torch.nn.functional.pad(cond, (0, 0, 0, n - 30)),
                             text=texts[i], time=time, cfg_infer=guided)
                 for i, n in enumerate(lengths)]
    assert packed.shape == (plan.total, mel)
    starts = dict(((row.item, row.unconditional), start)
                  for row, start in zip(plan.rows, plan.starts()))
    for i, n in enumerate(lengths):
        halves = alone[i].chunk(2) if guided else (alone[i],)
        for half, branch in zip(halves, (False, True)):
            start = starts[(i, branch)]
            # The package's forward runs both branches as a batch of two; the
            # bits can differ from one row alone, so this compares values.
            torch.testing.assert_close(packed[start:start + n], half[0], atol=1e-5, rtol=1e-4)
