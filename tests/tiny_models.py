"""Tiny F5-TTS and vocos models that run the real package code on the CPU.

Random weights, so the audio is noise, but every loading and generation path
is the one the worker uses with the real checkpoints. Fixed seeds make the
files byte-identical across runs, so tests can compare outputs.
"""
from __future__ import annotations

import shutil
from importlib.resources import files
from pathlib import Path

F5_SEED = 1234
VOCOS_SEED = 4321

# Same keys as f5_tts/configs/F5TTS_v1_Base.yaml, shrunk so a CPU run is instant.
TINY_ARCH = {
    "dim": 64,
    "depth": 2,
    "heads": 2,
    "ff_mult": 2,
    "text_dim": 32,
    "text_mask_padding": True,
    "qk_norm": None,
    "conv_layers": 1,
    "pe_attn_head": None,
    "attn_backend": "torch",
    "attn_mask_enabled": False,
    "checkpoint_activations": False,
}
MEL_SPEC = {
    "target_sample_rate": 24000,
    "n_mel_channels": 100,
    "hop_length": 256,
    "win_length": 1024,
    "n_fft": 1024,
    "mel_spec_type": "vocos",
}
VOCOS_CONFIG = {
    "feature_extractor": {
        "class_path": "vocos.feature_extractors.MelSpectrogramFeatures",
        "init_args": {"sample_rate": 24000, "n_fft": 1024, "hop_length": 256,
                      "n_mels": 100, "padding": "center"},
    },
    "backbone": {
        "class_path": "vocos.models.VocosBackbone",
        "init_args": {"input_channels": 100, "dim": 32, "intermediate_dim": 64,
                      "num_layers": 1},
    },
    "head": {
        "class_path": "vocos.heads.ISTFTHead",
        "init_args": {"dim": 32, "n_fft": 1024, "hop_length": 256, "padding": "center"},
    },
}
REFERENCE_TEXT = "Some call me nature, others call me mother nature."


def _package_file(relative: str) -> Path:
    return Path(str(files("f5_tts").joinpath(relative)))


def _write_yaml(path: Path, value: dict) -> None:
    import yaml

    path.write_text(yaml.safe_dump(value, sort_keys=False))


def _f5_config(vocab: Path, vocoder_dir: Path | None) -> dict:
    return {
        "model": {
            "name": "F5TTS_Tiny",
            "tokenizer": "custom",
            "tokenizer_path": str(vocab),
            "backbone": "DiT",
            "arch": dict(TINY_ARCH),
            "mel_spec": dict(MEL_SPEC),
            "vocoder": {"is_local": vocoder_dir is not None,
                        "local_path": str(vocoder_dir) if vocoder_dir else None},
        }
    }


def _tiny_cfm_state(vocab: Path) -> dict:
    import torch
    from f5_tts.model import CFM, DiT
    from f5_tts.model.utils import get_tokenizer

    vocab_char_map, vocab_size = get_tokenizer(str(vocab), "custom")
    mel_kwargs = {key: value for key, value in MEL_SPEC.items()}
    # fork_rng keeps the caller's global RNG state untouched by our seeding.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(F5_SEED)
        model = CFM(
            transformer=DiT(**TINY_ARCH, text_num_embeds=vocab_size,
                            mel_dim=MEL_SPEC["n_mel_channels"]),
            mel_spec_kwargs=mel_kwargs,
            vocab_char_map=vocab_char_map,
        )
    return {f"ema_model.{key}": value.contiguous()
            for key, value in model.state_dict().items()}


def build_tiny_f5(directory: Path, vocoder_dir: Path | None = None) -> dict:
    """Write a tiny F5-TTS config, checkpoint and vocab into ``directory``.

    Returns ``{"config": Path, "ckpt": Path, "vocab": Path}``.
    """
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocab = directory / "vocab.txt"
    shutil.copyfile(_package_file("infer/examples/vocab.txt"), vocab)
    ckpt = directory / "model_tiny.safetensors"
    save_file(_tiny_cfm_state(vocab), str(ckpt))
    config = directory / "F5TTS_Tiny.yaml"
    _write_yaml(config, _f5_config(vocab, vocoder_dir))
    return {"config": config, "ckpt": ckpt, "vocab": vocab}


def build_tiny_vocos(directory: Path) -> Path:
    """Write a vocos folder (config.yaml + pytorch_model.bin); return the folder."""
    import torch
    from vocos import Vocos

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "config.yaml"
    _write_yaml(config, VOCOS_CONFIG)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(VOCOS_SEED)
        model = Vocos.from_hparams(str(config))
    torch.save(model.state_dict(), directory / "pytorch_model.bin")
    return directory


def tiny_model_env(directory: Path) -> dict:
    """Build both tiny models under ``directory``; return the env that selects them."""
    directory = Path(directory)
    vocoder = build_tiny_vocos(directory / "vocos")
    f5 = build_tiny_f5(directory / "f5", vocoder_dir=vocoder)
    return {
        "F5TTS_MODEL_CONFIG": str(f5["config"]),
        "F5TTS_CKPT_FILE": str(f5["ckpt"]),
        "F5TTS_VOCAB_FILE": str(f5["vocab"]),
        "VOCODER_LOCAL_PATH": str(vocoder),
    }


def reference_clip() -> tuple[Path, str]:
    """The f5-tts package's English example clip and its transcript."""
    return _package_file("infer/examples/basic/basic_ref_en.wav"), REFERENCE_TEXT


def lively_env(tiny_models: dict, directory: Path) -> dict:
    """The tiny checkpoint with its zero-initialised layers (AdaLN gates, output
    projection) made random, on the CPU: with the gates at zero, attention would
    not reach the output, and any attention code would give the same bits."""
    import torch
    from safetensors.torch import load_file, save_file

    state = load_file(tiny_models["F5TTS_CKPT_FILE"])
    generator = torch.Generator().manual_seed(77)
    for key, value in state.items():
        if value.is_floating_point() and value.numel() > 1 and not bool(value.any()):
            state[key] = 0.2 * torch.randn(value.shape, generator=generator)
    path = Path(directory) / "model_lively.safetensors"
    save_file(state, str(path))
    return {**tiny_models, "F5TTS_CKPT_FILE": str(path), "DEVICE": "cpu"}
