"""F5-TTS model specs and loading: the one table of checkpoint names, the
spec a worker's settings select, and ``load``, which builds the model and the
vocoder through the f5-tts package's own ``load_model``/``load_vocoder`` with
the model yaml of its layout. The loaded-model cache is ``engine``'s.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from settings import Settings
from worker.core.errors import MODEL_ERROR, WorkerError
from worker.inference import packed_dit
from worker.inference.references import ReferenceCache

log = logging.getLogger(__name__)

# Model name -> checkpoint on the Hugging Face hub (the table f5_tts.api keeps).
CHECKPOINTS = {
    "F5TTS_v1_Base": "hf://SWivid/F5-TTS/F5TTS_v1_Base/model_1250000.safetensors",
    "F5TTS_Base": "hf://SWivid/F5-TTS/F5TTS_Base/model_1200000.safetensors",
    "E2TTS_Base": "hf://SWivid/E2-TTS/E2TTS_Base/model_1200000.safetensors",
}
VOCODER_REPO = "charactr/vocos-mel-24khz"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    config: Optional[Path]
    ckpt_file: Optional[str]
    vocab_file: Optional[str]
    vocoder_path: Optional[Path]
    device: str
    compile: bool = False


@dataclass
class LoadedModel:
    spec: ModelSpec
    model: object
    vocoder: object
    mel_spec_type: str
    sample_rate: int
    hop_length: int
    attn_backend: str
    load_seconds: float
    references: ReferenceCache = field(default_factory=ReferenceCache)
    packed: bool = False      # a DiT backbone: chunks run as packed batches (packed_dit)
    shard_pool: Optional[ThreadPoolExecutor] = None   # CPU only: see cpu_shards
    shards: int = 1
    compiled: bool = False


def resolve_device(setting: str) -> str:
    if setting != "auto":
        return setting
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"


def attn_backend(device: str) -> str:
    """flash_attn when it imports on CUDA; torch's attention otherwise."""
    if not device.startswith("cuda") or importlib.util.find_spec("flash_attn") is None:
        return "torch"
    try:
        import flash_attn  # noqa: F401 - importing it is the test
    except Exception as exc:  # noqa: BLE001 - a broken wheel must not stop the worker
        log.warning("flash_attn is installed but does not import (%s); using torch", exc)
        return "torch"
    return "flash_attn"


def model_spec(settings: Settings) -> ModelSpec:
    device = resolve_device(settings.device)
    # On 2 CPU cores compiling bought ~5 % (bench) for a minute of start-up: CUDA only.
    compile_model = settings.torch_compile and device.startswith("cuda")
    if settings.torch_compile and not compile_model:
        log.info("TORCH_COMPILE applies on CUDA only; the model runs uncompiled on %s", device)
    return ModelSpec(settings.f5tts_model, settings.f5tts_model_config,
                     settings.f5tts_ckpt_file, settings.f5tts_vocab_file,
                     settings.vocoder_local_path, device, compile_model)


def load_config(spec: ModelSpec):
    """The model yaml: F5TTS_MODEL_CONFIG, else the package's config of that name."""
    from omegaconf import OmegaConf

    path = spec.config
    if path is None:
        configs = _package_dir() / "configs"
        path = configs / f"{spec.name}.yaml"
        if not path.is_file():
            known = ", ".join(sorted(p.stem for p in configs.glob("*.yaml")))
            raise WorkerError(MODEL_ERROR, f"F5TTS_MODEL={spec.name} is not a model of the "
                              f"f5-tts package; use one of {known} or set F5TTS_MODEL_CONFIG")
    if not Path(path).is_file():
        raise WorkerError(MODEL_ERROR, f"F5TTS_MODEL_CONFIG={path} does not exist")
    return OmegaConf.load(str(path))


def model_arch(config, device: str) -> dict:
    """The backbone arguments of the yaml, with the attention backend of this machine."""
    from omegaconf import OmegaConf

    arch = OmegaConf.to_container(config.model.arch, resolve=True)
    arch["attn_backend"] = attn_backend(device)
    return arch


def _package_dir() -> Path:
    spec = importlib.util.find_spec("f5_tts")
    return Path(list(spec.submodule_search_locations)[0])


def _checkpoint(spec: ModelSpec, config) -> str:
    if spec.ckpt_file:
        return spec.ckpt_file
    url = CHECKPOINTS.get(str(config.model.name)) or CHECKPOINTS.get(spec.name)
    if url is None:
        raise WorkerError(MODEL_ERROR, f"no known checkpoint for {spec.name}; set "
                          "F5TTS_CKPT_FILE")
    from cached_path import cached_path
    return str(cached_path(url))


def load(spec: ModelSpec) -> LoadedModel:
    """Build the model and vocoder of ``spec``; compiling is engine's next step."""
    from hydra.utils import get_class

    started = time.monotonic()
    config = load_config(spec)
    arch = model_arch(config, spec.device)
    mel = config.model.mel_spec
    try:
        from f5_tts.infer.utils_infer import load_model, load_vocoder
        # The package prints progress to stdout; keep it in the log instead.
        with contextlib.redirect_stdout(io.StringIO()) as chatter:
            vocoder = load_vocoder(mel.mel_spec_type, spec.vocoder_path is not None,
                                   str(spec.vocoder_path or ""), spec.device)
            model = load_model(get_class(f"f5_tts.model.{config.model.backbone}"), arch,
                               _checkpoint(spec, config), mel_spec_type=mel.mel_spec_type,
                               vocab_file=spec.vocab_file or "", device=spec.device)
        log.debug("f5-tts: %s", chatter.getvalue().strip())
    except WorkerError:
        raise
    except Exception as exc:  # noqa: BLE001 - any loading failure is the operator's to fix
        log.exception("model load failed")
        raise WorkerError(MODEL_ERROR, f"the model could not be loaded ({type(exc).__name__}: "
                          f"{str(exc)[:200]}); check F5TTS_MODEL, F5TTS_CKPT_FILE, "
                          "F5TTS_VOCAB_FILE and VOCODER_LOCAL_PATH") from exc
    model.eval()
    loaded = LoadedModel(spec, model, vocoder, mel.mel_spec_type, int(mel.target_sample_rate),
                         int(mel.hop_length), arch["attn_backend"], 0.0,
                         packed=packed_dit.supports(model.transformer))
    if loaded.packed:
        packed_dit.install(model.transformer)
    if spec.device == "cpu":
        loaded.shards = cpu_shards()
        loaded.shard_pool = packed_dit.row_pool(loaded.shards) if loaded.shards > 1 else None
    loaded.load_seconds = time.monotonic() - started
    log.info("model %s loaded on %s in %.2f s (attention: %s)", config.model.name,
             spec.device, loaded.load_seconds, arch["attn_backend"])
    return loaded


def cpu_shards() -> int:
    """On the CPU the packed rows go to one thread per core, each with one
    intra-op thread (packed_dit). On 2 cores a block's two rows took 327 ms this
    way and 370 ms in one call with torch's two intra-op threads (best of 6)."""
    import torch

    return torch.get_num_threads()
