"""F5-TTS: loading (once per process, on the first tts job) and generation.

Loading goes through the f5-tts package's own ``load_model``/``load_vocoder``
with the model yaml of its layout. Generation follows the package's
``infer_batch_process`` (``chunk_text``, the duration rule, the vocoder, the
cross-fade) and the math of ``CFM.sample``, with three differences that make
it cheaper and reproducible: the reference's mel is made once per voice and
kept with the model; the chunks of a long text run as one packed batch
(packed_dit; the package runs them in threads); and each chunk's starting noise comes
from its own generator seeded from the job's seed (the package reseeds the
shared global RNG, so a multi-chunk result depends on thread timing).
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

import packed_dit
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
EDGE_SILENCE_DB = -42.0       # the package trims reference edges quieter than this
EDGE_STEP_S = 0.01            # ... in 10 ms steps (pydub's detect_leading_silence)
REFERENCE_TAIL_S = 0.05       # ... and appends this much silence
MAX_SEED = 2**31 - 1
MAX_FRAMES = 65536            # CFM.sample's cap on one item's length
# Chunks per batch: 8 chunks of ~22 s are ~16 k frames, whose
# activations fit a 24 GB GPU in half precision; longer texts take more batches.
MAX_BATCH_CHUNKS = 8
REFERENCE_CACHE_SIZE = 16     # prepared references kept per model (~0.5 MB each)

# The loaded model cache: the one piece of module state the worker keeps.
_MODELS: dict = {}
_LOAD_LOCK = threading.Lock()
# One generation at a time per process: jobs on one worker then cannot
# multiply peak GPU memory, and the model's compute is not split between them.
_RUN_LOCK = threading.Lock()


@dataclass(frozen=True)
class ModelSpec:
    name: str
    config: Optional[Path]
    ckpt_file: Optional[str]
    vocab_file: Optional[str]
    vocoder_path: Optional[Path]
    device: str
    compile: bool = False


@dataclass(frozen=True)
class PreparedReference:
    mel: object          # (1, frames + 1, n_mels) on the model's device, in its dtype
    frames: int          # samples // hop: where the generated part of each item starts
    seconds: float
    rms: float           # of the reference as given, to restore the output's loudness


class ReferenceCache:
    """A small LRU of prepared references, keyed by a hash of the samples, rate
    and transcript; safe to share between threads."""

    def __init__(self, capacity: int = REFERENCE_CACHE_SIZE):
        self.capacity = capacity
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str, make):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
            self.misses += 1
        value = make()
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return value


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


@dataclass(frozen=True)
class ChunkPlan:
    text: str
    tokens: list         # the model's text units for reference transcript + chunk
    frames: int          # wanted length, reference included
    seed: int


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
    model.eval()
    loaded = LoadedModel(spec, model, vocoder, mel.mel_spec_type, int(mel.target_sample_rate),
                         int(mel.hop_length), arch["attn_backend"], 0.0,
                         packed=packed_dit.supports(model.transformer))
    if loaded.packed:
        packed_dit.install(model.transformer)
    if spec.device == "cpu":
        loaded.shards = cpu_shards()
        loaded.shard_pool = packed_dit.row_pool(loaded.shards) if loaded.shards > 1 else None
    if spec.compile:
        loaded.compiled = compile_and_warm_up(loaded)
    loaded.load_seconds = time.monotonic() - started
    log.info("model %s loaded on %s in %.2f s (attention: %s, compiled: %s)", config.model.name,
             spec.device, loaded.load_seconds, arch["attn_backend"], loaded.compiled)
    return loaded


def cpu_shards() -> int:
    """On the CPU the packed rows go to one thread per core, each with one
    intra-op thread (packed_dit). On 2 cores a block's two rows took 327 ms this
    way and 370 ms in one call with torch's two intra-op threads (best of 6)."""
    import torch

    return torch.get_num_threads()


def compile_and_warm_up(loaded: LoadedModel) -> bool:
    """torch.compile each block's modulated norm and feed-forward, then run the
    warm-up so the compile cost is paid at load, not in the first job. These
    parts take tensors only, so a packed row of any length reuses one dynamic
    graph; attention stays eager (it loops over the packed segments). If
    compiling fails (no C compiler for Triton, an unsupported op), the model
    runs uncompiled: a slower worker beats one that cannot start."""
    blocks = loaded.model.transformer.transformer_blocks
    eager = [(block.attn_norm.forward, block.ff.forward) for block in blocks]
    try:
        compile_blocks(blocks)
        warm_up(loaded)
        return True
    except Exception as exc:  # noqa: BLE001 - torch.compile fails in too many ways to list
        for block, (norm, ff) in zip(blocks, eager):
            block.attn_norm.forward, block.ff.forward = norm, ff
        log.warning("torch.compile failed (%s: %s); the model runs uncompiled",
                    type(exc).__name__, str(exc)[:300])
        return False


def compile_blocks(blocks) -> None:
    import torch

    for block in blocks:
        block.attn_norm.forward = torch.compile(block.attn_norm.forward, dynamic=True)
        block.ff.forward = torch.compile(block.ff.forward, dynamic=True)


def warm_up(loaded: LoadedModel) -> None:
    """Run one chunk, then a batch of two chunks of different lengths."""
    import torch

    started = time.monotonic()
    rate = loaded.sample_rate
    tone = (0.1 * np.sin(np.linspace(0, 440 * 2 * np.pi * 2, 2 * rate))).astype(np.float32)
    with torch.inference_mode():
        ref = _prepare_reference(loaded, tone, rate)
        for texts in (["Warm up."], ["Warm up the model.", "Warm up."]):
            plans = plan_chunks(loaded, ref, "A tone.", texts, 0, 1.0)
            sample_batch(loaded, ref, plans, 2, 2.0)
    log.info("torch.compile warm-up took %.1f s", time.monotonic() - started)


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
    """Speak ``text`` in the voice of the reference; same inputs and seed, same samples.

    The chunks of a long text go through the model together, as packed batches
    of up to MAX_BATCH_CHUNKS; each chunk's noise comes from its own seed, so a
    chunk's audio does not depend on the batch it shares.
    """
    import torch

    ref_text = package_ref_text(ref_text)
    with _RUN_LOCK, cuda_guard(), torch.inference_mode():
        ref = prepared_reference(loaded, ref_samples, ref_rate, ref_text)
        chunks = split_text(text, ref_text, ref.seconds, speed)
        if not chunks:
            raise WorkerError(MODEL_ERROR, "the text has nothing to speak")
        plans = plan_chunks(loaded, ref, ref_text, chunks, seed, speed)
        mels = sample_chunks(loaded, ref, plans, nfe_step, cfg_strength)
        waves = [_vocode(loaded, mel, ref.rms) for mel in mels]
    samples, spans = cross_fade(waves, int(CROSS_FADE_S * loaded.sample_rate))
    rate = loaded.sample_rate
    chunk_audio = [ChunkAudio(chunk, start / rate, end / rate)
                   for chunk, (start, end) in zip(chunks, spans)]
    return Generation(samples.astype(np.float32), rate, chunk_audio, seed)


def package_ref_text(ref_text: str) -> str:
    """The transcript ending as ``preprocess_ref_audio_text`` makes it end: with
    ". " (or "。"), which the duration rule and the chunk size count."""
    ref_text = ref_text.strip()
    if ref_text.endswith("。"):
        return ref_text
    return ref_text + " " if ref_text.endswith(".") else ref_text + ". "


def trim_silent_edges(samples: np.ndarray, rate: int) -> np.ndarray:
    """The clip without its quiet edges plus a short tail of silence, as the
    package prepares a reference; a clip quiet throughout is kept as it is."""
    samples = np.asarray(samples, dtype=np.float32)
    step = max(1, int(round(rate * EDGE_STEP_S)))

    def quiet_lead(values: np.ndarray) -> int:
        starts = np.arange(0, len(values), step)
        energy = np.add.reduceat(np.square(values, dtype=np.float64), starts)
        counts = np.diff(np.append(starts, len(values)))
        level = 10 * np.log10(np.maximum(energy / counts, 1e-20))
        loud = np.flatnonzero(level >= EDGE_SILENCE_DB)
        return int(starts[loud[0]]) if len(loud) else len(values)

    if len(samples) == 0:
        return samples
    start = quiet_lead(samples)
    if start >= len(samples):
        return samples
    end = len(samples) - quiet_lead(samples[::-1])
    tail = np.zeros(int(REFERENCE_TAIL_S * rate), dtype=np.float32)
    return np.concatenate([samples[start:end], tail])


def reference_key(samples: np.ndarray, rate: int, ref_text: str) -> str:
    digest = hashlib.blake2b(np.ascontiguousarray(samples, dtype=np.float32).tobytes(),
                             digest_size=16)
    digest.update(f"|{rate}|{ref_text}".encode("utf-8"))
    return digest.hexdigest()


def prepared_reference(loaded: LoadedModel, samples: np.ndarray, rate: int,
                       ref_text: str) -> PreparedReference:
    """The reference as the model takes it, from the model's cache when seen before."""
    key = reference_key(samples, rate, ref_text)
    return loaded.references.get(key, lambda: _prepare_reference(loaded, samples, rate))


def _prepare_reference(loaded: LoadedModel, samples: np.ndarray, rate: int) -> PreparedReference:
    """Edges, loudness, resampling and mel as the package's
    ``preprocess_ref_audio_text``, ``infer_batch_process`` and ``CFM.sample`` do
    them, once per reference instead of once per job and chunk."""
    import torch
    import torchaudio

    audio = torch.from_numpy(trim_silent_edges(samples, rate)).unsqueeze(0)
    rms = float(torch.sqrt(torch.mean(torch.square(audio))))
    if rms < TARGET_RMS:
        audio = audio * TARGET_RMS / max(rms, 1e-8)
    if rate != loaded.sample_rate:
        audio = torchaudio.transforms.Resample(rate, loaded.sample_rate)(audio)
    audio = audio.to(loaded.spec.device)
    mel = loaded.model.mel_spec(audio).permute(0, 2, 1)
    mel = mel.to(next(loaded.model.parameters()).dtype)
    return PreparedReference(mel, audio.shape[-1] // loaded.hop_length,
                             audio.shape[-1] / loaded.sample_rate, rms)


def plan_chunks(loaded: LoadedModel, ref: PreparedReference, ref_text: str, chunks: list,
                seed: int, speed: float) -> list:
    """Each chunk's model text, length in frames and seed, by the package's rules."""
    from f5_tts.model.utils import convert_char_to_pinyin

    ref_text = ref_text + " " if len(ref_text[-1].encode("utf-8")) == 1 else ref_text
    ref_len = len(ref_text.encode("utf-8"))
    plans = []
    for index, chunk in enumerate(chunks):
        # Very short chunks get a slow pace, as the package does, or they come out clipped.
        local_speed = 0.3 if len(chunk.encode("utf-8")) < 10 else speed
        frames = ref.frames + int(ref.frames / ref_len * len(chunk.encode("utf-8")) / local_speed)
        tokens = convert_char_to_pinyin([ref_text + chunk])[0]
        plans.append(ChunkPlan(chunk, tokens, frames, chunk_seed(seed, index)))
    return plans


def sample_chunks(loaded: LoadedModel, ref: PreparedReference, plans: list, steps: int,
                  cfg_strength: float) -> list:
    """Generated mels (frames x n_mels), in the order of ``plans``. Chunks of similar
    length share a batch. A backbone other than DiT runs one chunk at a time
    through the package's own forward, which pads a batch into every item."""
    batch = MAX_BATCH_CHUNKS if loaded.packed else 1
    order = sorted(range(len(plans)), key=lambda index: plans[index].frames)
    mels = [None] * len(plans)
    for start in range(0, len(order), batch):
        group = order[start:start + batch]
        outs = sample_batch(loaded, ref, [plans[index] for index in group], steps, cfg_strength)
        for index, mel in zip(group, outs):
            mels[index] = mel
    return mels


def sample_batch(loaded: LoadedModel, ref: PreparedReference, plans: list, steps: int,
                 cfg_strength: float) -> list:
    """The flow-matching sampler of ``CFM.sample`` (f5-tts 1.1), for several chunks
    of one reference at once, with per-item noise from per-item generators:
    ``CFM.sample`` seeds the global RNG with one seed for every item, which makes
    the noise depend on the batch and races with other threads. For one item
    this returns what ``CFM.sample(seed=plans[0].seed)`` returns."""
    import torch
    import torch.nn.functional as F
    from f5_tts.model.utils import lens_to_mask, list_str_to_idx

    model = loaded.model
    device, dtype, ref_len = ref.mel.device, ref.mel.dtype, ref.mel.shape[1]
    text = list_str_to_idx([plan.tokens for plan in plans], model.vocab_char_map).to(device)
    wanted = torch.tensor([plan.frames for plan in plans], device=device, dtype=torch.long)
    duration = torch.maximum((text != -1).sum(dim=-1).clamp(min=ref_len) + 1, wanted)
    duration = duration.clamp(max=MAX_FRAMES)
    longest = int(duration.max())
    cond = F.pad(ref.mel, (0, 0, 0, longest - ref_len)).expand(len(plans), -1, -1)
    cond_mask = lens_to_mask(torch.tensor([ref_len], device=device), longest).unsqueeze(-1)
    noise = _noise([plan.seed for plan in plans], duration.tolist(), model.num_channels,
                   device, dtype)
    out = _integrate(loaded, noise, cond, text, duration.tolist(), steps, cfg_strength)
    out = torch.where(cond_mask, cond, out)
    return [out[index, ref.frames:int(duration[index])] for index in range(len(plans))]


def _noise(seeds: list, lengths: list, channels: int, device, dtype):
    import torch
    from torch.nn.utils.rnn import pad_sequence

    noise = []
    for seed, length in zip(seeds, lengths):
        generator = torch.Generator(device=device).manual_seed(seed)
        noise.append(torch.randn(length, channels, generator=generator, device=device,
                                 dtype=dtype))
    return pad_sequence(noise, padding_value=0, batch_first=True)


def _integrate(loaded: LoadedModel, noise, cond, text, lengths: list, steps: int,
               cfg_strength: float):
    """Euler steps from noise to mel on CFM.sample's (EPSS, sway-sampled) time grid."""
    import torch
    from f5_tts.model.utils import get_epss_timesteps
    from torchdiffeq import odeint

    model, guided = loaded.model, cfg_strength >= 1e-5
    predict = _packed_predictor(loaded, text, lengths, cond, guided) \
        if loaded.packed else _package_predictor(model, cond, text, guided)

    def flow(t, x):
        if not guided:
            return predict(t, x)
        pred, null_pred = torch.chunk(predict(t, x), 2, dim=0)
        return pred + (pred - null_pred) * cfg_strength

    times = get_epss_timesteps(steps, device=noise.device, dtype=noise.dtype)
    times = times + SWAY_SAMPLING * (torch.cos(torch.pi / 2 * times) - 1 + times)
    return odeint(flow, noise, times, **model.odeint_kwargs)[-1]


def _packed_predictor(loaded: LoadedModel, text, lengths: list, cond, guided: bool):
    transformer = loaded.model.transformer
    texts = packed_dit.embed_text(transformer, text, lengths)
    return lambda t, x: packed_dit.flow(transformer, x, cond, texts, t, lengths, guided,
                                        loaded.shard_pool, loaded.shards)


def _package_predictor(model, cond, text, guided: bool):
    """DiT.forward's contract for other backbones, one item per batch (no mask);
    no text cache, so nothing is left on the model between samplings."""
    def predict(t, x):
        return model.transformer(x=x, cond=cond, text=text, time=t, mask=None,
                                 drop_audio_cond=False, drop_text=False, cfg_infer=guided)
    return predict


def _vocode(loaded: LoadedModel, mel, ref_rms: float) -> np.ndarray:
    mel = mel.unsqueeze(0).to(dtype=next(loaded.vocoder.parameters()).dtype)
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
