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
from worker.inference import attention, packed_dit, precision
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
    dtype: str = "float32"       # precision.DTYPES
    cuda_graphs: bool = False


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
    attention: str = attention.BY_LENGTH   # the packed path's attention backend
    graphs: Optional[object] = None        # graphs.BlockGraphs with CUDA_GRAPHS on CUDA
    scheduler: Optional[object] = None     # scheduler.Scheduler: the one thread that runs it

    def numerics(self) -> dict:
        """What produces this model's audio (the contract's ``numerics``): the same
        seed and input give the same bytes under the same numerics."""
        return _numerics(self.spec.device, self.spec.dtype, self.attention, self.compiled,
                         self.graphs is not None and self.graphs.active)


def resolve_device(setting: str) -> str:
    if setting != "auto":
        return setting
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"


def attn_backend(device: str) -> str:
    """flash_attn when it imports on CUDA; torch's attention otherwise (the
    package's own processor, for calls that do not take the packed path)."""
    if not device.startswith("cuda") or not _flash_attn_found():
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
    graphs = settings.cuda_graphs and device.startswith("cuda")
    if settings.cuda_graphs and not graphs:
        log.info("CUDA_GRAPHS applies on CUDA only; the model runs eagerly on %s", device)
    return ModelSpec(settings.f5tts_model, settings.f5tts_model_config,
                     settings.f5tts_ckpt_file, settings.f5tts_vocab_file,
                     settings.vocoder_local_path, device, compile_model,
                     precision.resolve_dtype(settings.dtype, device), graphs)


def configured_numerics(settings: Settings) -> dict:
    """The numerics these settings would load with, without loading (for health,
    with ``"loaded": False``): the attention backend is the best candidate; load
    may settle on a lesser one (attention.choose)."""
    spec = model_spec(settings)
    best = attention.candidates(spec.device, spec.dtype, _flash_attn_found())[0]
    return {**_numerics(spec.device, spec.dtype, best, spec.compile, spec.cuda_graphs),
            "loaded": False}


def _numerics(device: str, dtype: str, attention_backend: str, compiled: bool,
              graphs: bool) -> dict:
    gpu = None
    if device.startswith("cuda"):
        import torch

        gpu = torch.cuda.get_device_name(device)
    return {"device": device, "gpu": gpu, "torch": _torch_version(), "dtype": dtype,
            "attention": attention_backend, "compile": compiled, "graphs": graphs}


def _torch_version() -> str:
    """torch.__version__ (with its build, +cu128), read without importing torch:
    health answers on the CPU with no torch loaded."""
    import importlib.metadata
    import sys

    if "torch" in sys.modules:
        return sys.modules["torch"].__version__
    from pathlib import Path

    spec = importlib.util.find_spec("torch")
    version_file = Path(list(spec.submodule_search_locations)[0]) / "version.py" if spec else None
    if version_file is not None and version_file.is_file():
        for line in version_file.read_text().splitlines():
            if line.startswith("__version__"):
                return line.split("=", 1)[1].strip().strip("'\"")
    return importlib.metadata.version("torch")


def _flash_attn_found() -> bool:
    return importlib.util.find_spec("flash_attn") is not None


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


def checkpoint_path(spec: ModelSpec) -> str:
    """The local file of the checkpoint ``spec`` loads (the hub's cached copy)."""
    return _checkpoint(spec, load_config(spec))


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
    started = time.monotonic()
    config = load_config(spec)
    arch = model_arch(config, spec.device)
    mel = config.model.mel_spec
    model, vocoder = _build(spec, config, arch)
    loaded = LoadedModel(spec, model, vocoder, mel.mel_spec_type, int(mel.target_sample_rate),
                         int(mel.hop_length), arch["attn_backend"], 0.0,
                         packed=packed_dit.supports(model.transformer))
    if spec.device.startswith("cuda"):
        fix_cuda_numerics()
    if loaded.packed:
        packed_dit.install(model.transformer)
        loaded.attention = attention.choose(spec.device, spec.dtype, _flash_attn_found())
        if spec.cuda_graphs:
            loaded.graphs = _graphs(loaded)
    if spec.device == "cpu":
        loaded.shards = cpu_shards()
        loaded.shard_pool = packed_dit.row_pool(loaded.shards) if loaded.shards > 1 else None
    loaded.load_seconds = time.monotonic() - started
    log.info("model %s loaded on %s in %.2f s (numerics: %s)", config.model.name,
             spec.device, loaded.load_seconds, loaded.numerics())
    return loaded


def _build(spec: ModelSpec, config, arch: dict) -> tuple:
    """The package's loaders, the checkpoint read in fp32 on the CPU and then moved
    and cast once (its own loader casts to fp16 before loading on CUDA, which
    would round a float32 or bfloat16 model's weights through fp16 first)."""
    from hydra.utils import get_class

    mel = config.model.mel_spec
    try:
        from f5_tts.infer.utils_infer import load_model, load_vocoder
        # The package prints progress to stdout; keep it in the log instead.
        with contextlib.redirect_stdout(io.StringIO()) as chatter:
            vocoder = load_vocoder(mel.mel_spec_type, spec.vocoder_path is not None,
                                   str(spec.vocoder_path or ""), spec.device)
            model = load_model(get_class(f"f5_tts.model.{config.model.backbone}"), arch,
                               _checkpoint(spec, config), mel_spec_type=mel.mel_spec_type,
                               vocab_file=spec.vocab_file or "", device="cpu")
        log.debug("f5-tts: %s", chatter.getvalue().strip())
        model = precision.apply(model, spec.dtype, spec.device)
    except WorkerError:
        raise
    except Exception as exc:  # noqa: BLE001 - any loading failure is the operator's to fix
        log.exception("model load failed")
        raise WorkerError(MODEL_ERROR, f"the model could not be loaded ({type(exc).__name__}: "
                          f"{str(exc)[:200]}); check F5TTS_MODEL, F5TTS_CKPT_FILE, "
                          "F5TTS_VOCAB_FILE and VOCODER_LOCAL_PATH") from exc
    return model.eval(), vocoder


def fix_cuda_numerics() -> None:
    """Make a GPU's kernels the same from run to run and worker to worker:
    deterministic cuDNN convolutions chosen without benchmarking, no TF32 in
    float32, and SDPA without the cuDNN backend (whose choice depends on the
    GPU and driver), so the flash and efficient kernels are picked by dtype."""
    import torch

    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cuda.enable_cudnn_sdp(False)


def _graphs(loaded: LoadedModel):
    from worker.inference import graphs

    if loaded.attention not in attention.VARLEN:
        log.warning("CUDA_GRAPHS needs a variable-length attention kernel (have %s); "
                    "the model runs eagerly", loaded.attention)
        return None
    return graphs.BlockGraphs(loaded.model.transformer)


def cpu_shards() -> int:
    """On the CPU the packed row goes to one thread per core, each with one
    intra-op thread (packed_dit.row_pool)."""
    import torch

    return torch.get_num_threads()
