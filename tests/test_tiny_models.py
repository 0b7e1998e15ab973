"""The tiny models load and generate through f5-tts's own inference path."""
from __future__ import annotations

import hashlib
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest

from tests.tiny_models import (
    build_tiny_f5,
    build_tiny_vocos,
    reference_clip,
    tiny_model_env,
)


def _digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    env = tiny_model_env(root)
    return root, env


@pytest.fixture(scope="module")
def loaded(tiny):
    from f5_tts.infer.utils_infer import load_model, load_vocoder
    from f5_tts.model import DiT
    from omegaconf import OmegaConf

    _, env = tiny
    arch = OmegaConf.to_container(OmegaConf.load(env["F5TTS_MODEL_CONFIG"]).model.arch)
    model = load_model(DiT, arch, env["F5TTS_CKPT_FILE"], mel_spec_type="vocos",
                       vocab_file=env["F5TTS_VOCAB_FILE"], device="cpu")
    vocoder = load_vocoder("vocos", is_local=True, local_path=env["VOCODER_LOCAL_PATH"],
                           device="cpu")
    return model, vocoder


def test_config_has_the_package_layout(tiny):
    from omegaconf import OmegaConf

    _, env = tiny
    config = OmegaConf.load(env["F5TTS_MODEL_CONFIG"])
    base = OmegaConf.load(str(files("f5_tts").joinpath("configs/F5TTS_v1_Base.yaml")))
    assert set(config.model.keys()) == set(base.model.keys())
    assert set(config.model.arch.keys()) == set(base.model.arch.keys())
    assert set(config.model.mel_spec.keys()) == set(base.model.mel_spec.keys())
    assert config.model.backbone == "DiT"
    assert config.model.arch.dim == 64 and config.model.arch.depth == 2
    assert config.model.arch.attn_backend == "torch"
    assert config.model.mel_spec.mel_spec_type == "vocos"
    assert config.model.mel_spec.target_sample_rate == 24000
    assert config.model.tokenizer_path == env["F5TTS_VOCAB_FILE"]
    assert config.model.vocoder.is_local is True
    assert config.model.vocoder.local_path == env["VOCODER_LOCAL_PATH"]


def test_env_points_at_existing_files(tiny):
    _, env = tiny
    for name in ("F5TTS_MODEL_CONFIG", "F5TTS_CKPT_FILE", "F5TTS_VOCAB_FILE"):
        assert Path(env[name]).is_file(), name
    vocoder = Path(env["VOCODER_LOCAL_PATH"])
    assert (vocoder / "config.yaml").is_file()
    assert (vocoder / "pytorch_model.bin").is_file()


def test_checkpoint_keys_are_ema_prefixed(tiny):
    from safetensors.torch import load_file

    _, env = tiny
    keys = list(load_file(env["F5TTS_CKPT_FILE"]))
    assert keys and all(key.startswith("ema_model.") for key in keys)


def test_builds_are_byte_identical(tiny, tmp_path):
    _, env = tiny
    f5 = build_tiny_f5(tmp_path / "f5")
    vocoder = build_tiny_vocos(tmp_path / "vocos")
    assert _digest(f5["ckpt"]) == _digest(env["F5TTS_CKPT_FILE"])
    assert _digest(f5["vocab"]) == _digest(env["F5TTS_VOCAB_FILE"])
    assert (_digest(vocoder / "pytorch_model.bin")
            == _digest(Path(env["VOCODER_LOCAL_PATH"]) / "pytorch_model.bin"))


def test_reference_clip_loads_without_ffmpeg():
    import torchaudio

    path, text = reference_clip()
    audio, rate = torchaudio.load(str(path))
    assert rate == 24000
    assert audio.shape[0] == 1 and audio.shape[1] > rate  # over a second of audio
    assert text.endswith(".")


def test_infer_process_generates_24k_audio(loaded):
    from f5_tts.infer.utils_infer import infer_process

    model, vocoder = loaded
    ref_wav, ref_text = reference_clip()
    wave, rate, spectrogram = infer_process(
        str(ref_wav), ref_text, "Hello world.", model, vocoder, nfe_step=4,
        device="cpu", progress=None, show_info=lambda *_: None)
    assert rate == 24000
    assert wave.ndim == 1 and len(wave) > 0
    assert np.isfinite(wave).all()
    assert spectrogram.shape[0] == 100


def test_sample_with_seed_is_reproducible(loaded):
    import torch

    model, _ = loaded
    cond = torch.zeros(1, 24000)
    outputs = []
    for _ in range(2):
        with torch.inference_mode():
            mel, _ = model.sample(cond=cond, text=["hello world"], duration=120,
                                  steps=2, seed=7)
        outputs.append(mel)
    assert torch.equal(outputs[0], outputs[1])
