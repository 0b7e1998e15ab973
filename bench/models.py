"""Real-size models with random weights, saved in the formats the real ones ship in.

The F5-TTS backbone is built from the package's own ``F5TTS_v1_Base.yaml`` and
saved as safetensors with ``ema_model.`` keys (the layout of the hub's
``model_1250000.safetensors``). The vocoder is a vocos folder (``config.yaml`` +
``pytorch_model.bin``) with the values of ``charactr/vocos-mel-24khz``'s
config.yaml, which match vocos' own training config ``configs/vocos.yaml``:
mel features 24 kHz, n_fft 1024, hop 256, 100 mels, padding center;
VocosBackbone input_channels 100, dim 512, intermediate_dim 1536, 8 layers;
ISTFTHead dim 512, n_fft 1024, hop 256, padding center (ISTFTHead's Python
default is "same", but both configs set "center").

Compute does not depend on the weights' values, so these time like the real
ones. A manifest next to the files says what they are; a folder whose manifest
matches is reused instead of rebuilt (the F5 checkpoint is 1.35 GB).
"""
from __future__ import annotations

import json
import logging
import shutil
from importlib.resources import files
from pathlib import Path

log = logging.getLogger(__name__)

F5_SEED = 20260501
VOCOS_SEED = 20260502
MODEL_NAME = "F5TTS_v1_Base"
MANIFEST_VERSION = 1
VOCOS_CONFIG = {
    "feature_extractor": {
        "class_path": "vocos.feature_extractors.MelSpectrogramFeatures",
        "init_args": {"sample_rate": 24000, "n_fft": 1024, "hop_length": 256,
                      "n_mels": 100, "padding": "center"},
    },
    "backbone": {
        "class_path": "vocos.models.VocosBackbone",
        "init_args": {"input_channels": 100, "dim": 512, "intermediate_dim": 1536,
                      "num_layers": 8},
    },
    "head": {
        "class_path": "vocos.heads.ISTFTHead",
        "init_args": {"dim": 512, "n_fft": 1024, "hop_length": 256, "padding": "center"},
    },
}


def package_file(relative: str) -> Path:
    return Path(str(files("f5_tts").joinpath(relative)))


def _manifest() -> dict:
    return {"version": MANIFEST_VERSION, "model": MODEL_NAME, "f5_seed": F5_SEED,
            "vocos_seed": VOCOS_SEED, "vocos": VOCOS_CONFIG}


def _randomize_zero_inits(model) -> None:
    """DiT zero-initialises its AdaLN and output layers; give them small random
    values so every layer shapes the output, as trained weights do."""
    import torch

    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.numel() > 1 and not bool(param.any()):
                param.normal_(0.0, 0.02)
                log.debug("randomized %s", name)


def build_f5(directory: Path) -> tuple:
    """Write the checkpoint and vocab; return (ckpt, vocab, parameter count)."""
    import torch
    from f5_tts.model import CFM, DiT
    from f5_tts.model.utils import get_tokenizer
    from omegaconf import OmegaConf
    from safetensors.torch import save_file

    config = OmegaConf.load(str(package_file(f"configs/{MODEL_NAME}.yaml")))
    arch = OmegaConf.to_container(config.model.arch, resolve=True)
    mel = OmegaConf.to_container(config.model.mel_spec, resolve=True)
    vocab = directory / "vocab.txt"
    shutil.copyfile(package_file("infer/examples/vocab.txt"), vocab)
    vocab_char_map, vocab_size = get_tokenizer(str(vocab), "custom")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(F5_SEED)
        model = CFM(transformer=DiT(**arch, text_num_embeds=vocab_size,
                                    mel_dim=mel["n_mel_channels"]),
                    mel_spec_kwargs=mel, vocab_char_map=vocab_char_map)
        _randomize_zero_inits(model)
    state = {f"ema_model.{key}": value.contiguous() for key, value in model.state_dict().items()}
    ckpt = directory / "model_random.safetensors"
    save_file(state, str(ckpt))
    return ckpt, vocab, sum(p.numel() for p in model.parameters())


def build_vocos(directory: Path) -> int:
    import torch
    import yaml
    from vocos import Vocos

    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "config.yaml"
    config.write_text(yaml.safe_dump(VOCOS_CONFIG, sort_keys=False))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(VOCOS_SEED)
        model = Vocos.from_hparams(str(config))
    torch.save(model.state_dict(), directory / "pytorch_model.bin")
    return sum(p.numel() for p in model.parameters())


def ensure_models(root: Path) -> dict:
    """The real-size model files under ``root``, built on first use; returns their paths."""
    root = Path(root)
    manifest_path = root / "manifest.json"
    paths = {"ckpt": root / "model_random.safetensors", "vocab": root / "vocab.txt",
             "vocoder": root / "vocos"}
    if manifest_path.is_file():
        saved = json.loads(manifest_path.read_text())
        if {k: saved.get(k) for k in _manifest()} == _manifest() and all(
                p.exists() for p in paths.values()):
            return {**paths, "params": saved["params"]}
    root.mkdir(parents=True, exist_ok=True)
    log.info("building real-size %s and vocos with random weights in %s", MODEL_NAME, root)
    _, _, f5_params = build_f5(root)
    vocos_params = build_vocos(paths["vocoder"])
    params = {"f5": f5_params, "vocos": vocos_params}
    manifest_path.write_text(json.dumps({**_manifest(), "params": params}, indent=2))
    return {**paths, "params": params}
