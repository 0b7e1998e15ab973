"""F5-TTS: loading (once per process, on the first tts job) and generation.

Loading goes through the f5-tts package's own ``load_model``/``load_vocoder``
with the model yaml of its layout. Generation builds on what its
``infer_batch_process`` builds on (``chunk_text``, ``CFM.sample``, the
vocoder), but runs the chunks of a long text in order, each with a seed
derived from the job's seed: the package runs them in threads that share
torch's global RNG, which makes a multi-chunk result irreproducible.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from errors import MODEL_ERROR, WorkerError
from settings import Settings

log = logging.getLogger(__name__)

# Model name -> checkpoint on the Hugging Face hub (the table f5_tts.api keeps).
CHECKPOINTS = {
    "F5TTS_v1_Base": "hf://SWivid/F5-TTS/F5TTS_v1_Base/model_1250000.safetensors",
    "F5TTS_Base": "hf://SWivid/F5-TTS/F5TTS_Base/model_1200000.safetensors",
    "E2TTS_Base": "hf://SWivid/E2-TTS/E2TTS_Base/model_1200000.safetensors",
}
VOCODER_REPO = "charactr/vocos-mel-24khz"
TARGET_RMS = 0.1
CROSS_FADE_S = 0.15
SWAY_SAMPLING = -1.0
MAX_SEED = 2**31 - 1

# The loaded model cache: the one piece of module state the worker keeps.
_MODELS: dict = {}
_LOAD_LOCK = threading.Lock()
_RUN_LOCK = threading.Lock()  # CFM.sample seeds torch's global RNG: one job at a time


@dataclass(frozen=True)
class ModelSpec:
    name: str
    config: Optional[Path]
    ckpt_file: Optional[str]
    vocab_file: Optional[str]
    vocoder_path: Optional[Path]
    device: str


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


@dataclass(frozen=True)
class ChunkAudio:
    text: str
    start: float      # seconds in the final audio
    end: float


@dataclass
class Generation:
    samples: np.ndarray   # float32 mono
    sample_rate: int
    chunks: list          # list[ChunkAudio]
    seed: int


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
        import flash_attn  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - a broken wheel must not stop the worker
        log.warning("flash_attn is installed but does not import (%s); using torch", exc)
        return "torch"
    return "flash_attn"


def model_spec(settings: Settings) -> ModelSpec:
    return ModelSpec(settings.f5tts_model, settings.f5tts_model_config,
                     settings.f5tts_ckpt_file, settings.f5tts_vocab_file,
                     settings.vocoder_local_path, resolve_device(settings.device))


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


def is_loaded() -> bool:
    return any(isinstance(key, ModelSpec) for key in _MODELS)


def get_model(settings: Settings) -> LoadedModel:
    """The model for these settings, loaded on first use and kept."""
    spec = model_spec(settings)
    loaded = _MODELS.get(spec)
    if loaded is not None:
        return loaded
    with _LOAD_LOCK:
        if spec not in _MODELS:
            _MODELS[spec] = _load(spec)
        return _MODELS[spec]


def _load(spec: ModelSpec) -> LoadedModel:
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
    seconds = time.monotonic() - started
    log.info("model %s loaded on %s in %.2f s (attention: %s)", config.model.name, spec.device,
             seconds, arch["attn_backend"])
    return LoadedModel(spec, model, vocoder, mel.mel_spec_type, int(mel.target_sample_rate),
                       int(mel.hop_length), arch["attn_backend"], seconds)


@contextlib.contextmanager
def cuda_guard():
    """Turn a broken CUDA state into model_error with refresh_worker set."""
    import torch

    try:
        yield
    except torch.cuda.OutOfMemoryError as exc:
        torch.cuda.empty_cache()
        raise WorkerError(MODEL_ERROR, "the GPU ran out of memory; try a shorter text",
                          refresh_worker=True) from exc
    except RuntimeError as exc:
        if "CUDA" not in str(exc) and "cuda" not in str(exc):
            raise
        raise WorkerError(MODEL_ERROR, f"the GPU failed ({str(exc)[:120]})",
                          refresh_worker=True) from exc


def chunk_seed(seed: int, index: int) -> int:
    """The seed of chunk ``index``: chunk 0 uses the job's seed itself."""
    return (seed + index * 1_000_003) % (MAX_SEED + 1)


def split_text(text: str, ref_text: str, ref_seconds: float, speed: float) -> list:
    """The package's chunking rule: as much text per chunk as fits ~22 s with the reference."""
    from f5_tts.infer.utils_infer import chunk_text

    per_second = len(ref_text.encode("utf-8")) / max(ref_seconds, 0.1)
    max_chars = max(1, int(per_second * (22 - ref_seconds) * speed))
    return chunk_text(text, max_chars=max_chars)


def generate(loaded: LoadedModel, ref_samples: np.ndarray, ref_rate: int, ref_text: str,
             text: str, *, seed: int, speed: float = 1.0, nfe_step: int = 32,
             cfg_strength: float = 2.0) -> Generation:
    """Speak ``text`` in the voice of the reference; same inputs and seed, same samples."""
    import torch

    with _RUN_LOCK, cuda_guard(), torch.inference_mode():
        ref, ref_rms = _prepare_reference(loaded, ref_samples, ref_rate)
        ref_seconds = ref.shape[-1] / loaded.sample_rate
        chunks = split_text(text, ref_text, ref_seconds, speed)
        if not chunks:
            raise WorkerError(MODEL_ERROR, "the text has nothing to speak")
        ref_text = ref_text + " " if len(ref_text[-1].encode("utf-8")) == 1 else ref_text
        waves = [_run_chunk(loaded, ref, ref_rms, ref_text, chunk, chunk_seed(seed, index),
                            speed, nfe_step, cfg_strength)
                 for index, chunk in enumerate(chunks)]
    samples, spans = cross_fade(waves, int(CROSS_FADE_S * loaded.sample_rate))
    rate = loaded.sample_rate
    chunk_audio = [ChunkAudio(chunk, start / rate, end / rate)
                   for chunk, (start, end) in zip(chunks, spans)]
    return Generation(samples.astype(np.float32), rate, chunk_audio, seed)


def _prepare_reference(loaded: LoadedModel, samples: np.ndarray, rate: int):
    import torch
    import torchaudio

    audio = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)).unsqueeze(0)
    rms = float(torch.sqrt(torch.mean(torch.square(audio))))
    if rms < TARGET_RMS:
        audio = audio * TARGET_RMS / max(rms, 1e-8)
    if rate != loaded.sample_rate:
        audio = torchaudio.transforms.Resample(rate, loaded.sample_rate)(audio)
    return audio.to(loaded.spec.device), rms


def _run_chunk(loaded: LoadedModel, ref, ref_rms: float, ref_text: str, chunk: str,
               seed: int, speed: float, nfe_step: int, cfg_strength: float) -> np.ndarray:
    from f5_tts.model.utils import convert_char_to_pinyin

    # Very short chunks get a slow pace, as the package does, or they come out clipped.
    local_speed = 0.3 if len(chunk.encode("utf-8")) < 10 else speed
    ref_frames = ref.shape[-1] // loaded.hop_length
    ref_len = len(ref_text.encode("utf-8"))
    duration = ref_frames + int(ref_frames / ref_len * len(chunk.encode("utf-8")) / local_speed)
    generated, _ = loaded.model.sample(
        cond=ref, text=convert_char_to_pinyin([ref_text + chunk]), duration=duration,
        steps=nfe_step, cfg_strength=cfg_strength, sway_sampling_coef=SWAY_SAMPLING, seed=seed)
    mel = generated.to(dtype=next(loaded.vocoder.parameters()).dtype)[:, ref_frames:, :]
    wave = loaded.vocoder.decode(mel.permute(0, 2, 1))
    if ref_rms < TARGET_RMS:
        wave = wave * ref_rms / TARGET_RMS
    return wave.squeeze().float().cpu().numpy()


def cross_fade(waves: list, overlap: int) -> tuple:
    """Join chunk waves with linear cross-fades; return the samples and each chunk's span."""
    out = np.asarray(waves[0], dtype=np.float32)
    spans = [(0, len(out))]
    for wave in waves[1:]:
        wave = np.asarray(wave, dtype=np.float32)
        fade = min(overlap, len(out), len(wave))
        start = len(out) - fade
        if fade > 0:
            ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
            mixed = out[start:] * (1 - ramp) + wave[:fade] * ramp
            out = np.concatenate([out[:start], mixed, wave[fade:]])
        else:
            out = np.concatenate([out, wave])
        spans.append((start, len(out)))
    return out, spans


def transcribe(settings: Settings, samples: np.ndarray, rate: int) -> str:
    """Transcript of a reference clip with ASR_MODEL (Whisper via transformers)."""
    pipe = _asr_pipeline(settings.asr_model, resolve_device(settings.device))
    try:
        audio = {"raw": np.asarray(samples, dtype=np.float32), "sampling_rate": rate}
        text = pipe(audio, chunk_length_s=30, batch_size=16, return_timestamps=False,
                    generate_kwargs={"task": "transcribe"})["text"].strip()
    except Exception as exc:  # noqa: BLE001 - surfaced as the contract's model_error
        log.exception("transcription failed")
        raise WorkerError(MODEL_ERROR, f"the reference could not be transcribed "
                          f"({type(exc).__name__}); pass ref_text") from exc
    if not text:
        raise WorkerError(MODEL_ERROR, "the reference transcribed to nothing; pass ref_text")
    return text


def _asr_pipeline(model_id: str, device: str):
    key = ("asr", model_id, device)
    if key not in _MODELS:
        with _LOAD_LOCK:
            if key not in _MODELS:
                _MODELS[key] = _load_asr(model_id, device)
    return _MODELS[key]


def _load_asr(model_id: str, device: str):
    import torch
    from transformers import pipeline

    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    try:
        return pipeline("automatic-speech-recognition", model=model_id, dtype=dtype,
                        device=device)
    except Exception as exc:  # noqa: BLE001 - any loading failure is the operator's to fix
        log.exception("ASR model load failed")
        raise WorkerError(MODEL_ERROR, f"ASR_MODEL={model_id} could not be loaded "
                          f"({type(exc).__name__}); pass ref_text or set ASR_MODEL") from exc
