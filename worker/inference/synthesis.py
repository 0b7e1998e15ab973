"""Synthesis: the chunk plan, flow-matching sampling over packed batches, the
vocoder and the cross-fade.

Generation follows the package's ``infer_batch_process`` (the duration rule,
the vocoder, the cross-fade) and the math of ``CFM.sample``, with differences
that make it cheaper and reproducible: the reference's mel is made once per
voice (references); the chunks of a long text run as one packed batch
(packed_dit; the package runs them in threads); and each chunk's starting
noise comes from its own generator seeded from the job's seed (the package
reseeds the shared global RNG, so a multi-chunk result depends on thread
timing).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

import numpy as np

from worker.core.errors import MODEL_ERROR, WorkerError
from worker.inference import precision, sampler
from worker.inference.cuda import cuda_guard
from worker.inference.models import LoadedModel
from worker.inference.references import (
    TARGET_RMS,
    PreparedReference,
    package_ref_text,
    prepare_reference,
    prepared_reference,
)
from worker.inference.sampler import SampleItem
from worker.inference.scheduler import Scheduler
from worker.media import track
from worker.text.chunking import ChunkedText, budget_bytes, chunk_text
from worker.text.frontend import PreparedText, prepare_text

log = logging.getLogger(__name__)

SWAY_SAMPLING = precision.SWAY_SAMPLING
MAX_SEED = 2**31 - 1
DEFAULT_MAX_CHUNK_SECONDS = 25   # settings.MAX_CHUNK_SECONDS's default
MAX_FRAMES = sampler.MAX_FRAMES            # CFM.sample's cap on one item's length
# Chunks per batch: 8 chunks of ~22 s are ~16 k frames, whose
# activations fit a 24 GB GPU in half precision; longer texts take more batches.
MAX_BATCH_CHUNKS = 8
# ... and at most this many frames together (8 chunks of the longest, 25 s), so
# that peak memory stays bounded whatever the chunks.
MAX_BATCH_FRAMES = 8 * 2344
# One scheduler per loaded model is made at its first use.
_SCHEDULER_LOCK = threading.Lock()


@dataclass(frozen=True)
class ChunkPlan:
    text: str
    tokens: list         # the model's text units for reference transcript + chunk
    frames: int          # wanted length, reference included
    seed: int
    ref: Optional[PreparedReference] = None     # None: the batch's reference
    cfg_strength: Optional[float] = None        # None: the batch's cfg_strength


@dataclass(frozen=True)
class ChunkAudio:
    text: str         # the model text of the chunk
    start: float      # seconds in the final audio
    end: float


@dataclass
class Generation:
    samples: np.ndarray   # float32 mono
    sample_rate: int
    chunks: list          # list[ChunkAudio]
    seed: int
    chunked: ChunkedText  # the chunk plan: model texts, units, pauses
    settled: tuple = ()   # per chunk, the sample where the next chunk's cross-fade begins


def chunk_seed(seed: int, index: int) -> int:
    """The seed of chunk ``index``: chunk 0 uses the job's seed itself."""
    return (seed + index * 1_000_003) % (MAX_SEED + 1)


def chunks_for(text, ref_text: str, ref_seconds: float, speed: float = 1.0,
               max_chunk_seconds: float = DEFAULT_MAX_CHUNK_SECONDS) -> ChunkedText:
    """The chunk plan of ``text`` (a PreparedText, or a plain string put through
    the front end) for a reference of ``ref_seconds`` with transcript ``ref_text``."""
    prepared = text if isinstance(text, PreparedText) else prepare_text(text)
    ref_text = package_ref_text(ref_text)
    return chunk_text(prepared, budget_bytes(ref_text, ref_seconds, max_chunk_seconds, speed))


def reference(loaded: LoadedModel, samples: np.ndarray, rate: int,
              ref_text: str) -> PreparedReference:
    """The reference as the model takes it (prepared once per voice, then cached)."""
    import torch

    with cuda_guard(), torch.inference_mode():
        return prepared_reference(loaded, samples, rate, package_ref_text(ref_text))


@dataclass(frozen=True)
class Speech:
    """A text's chunk plan and the model plans of its chunks."""
    chunked: ChunkedText
    plans: list
    seed: int


def plan_speech(loaded: LoadedModel, ref_samples: np.ndarray, ref_rate: int, ref_text: str,
                text, *, seed: int, speed: float = 1.0, cfg_strength: float = 2.0,
                max_chunk_seconds: float = DEFAULT_MAX_CHUNK_SECONDS) -> Speech:
    """The chunks of ``text`` (a PreparedText, or a string) for this reference,
    and each chunk's model plan."""
    ref_text = package_ref_text(ref_text)
    ref = reference(loaded, ref_samples, ref_rate, ref_text)
    chunked = chunks_for(text, ref_text, ref.seconds, speed, max_chunk_seconds)
    if not chunked.chunks:
        raise WorkerError(MODEL_ERROR, "the text has nothing to speak")
    plans = plan_chunks(loaded, ref, ref_text, [chunk.text for chunk in chunked.chunks],
                        seed, speed, cfg_strength=cfg_strength)
    return Speech(chunked, plans, seed)


def assemble(loaded: LoadedModel, speech: Speech, waves: list,
             remove_silence: bool = False) -> Generation:
    """The chunks' audio joined into the track, with its pauses."""
    rate = loaded.sample_rate
    chunks = speech.chunked.chunks
    joined = track.join(waves, [chunk.pause_after for chunk in chunks],
                        speech.chunked.lead_pause, rate, remove_silence)
    chunk_audio = [ChunkAudio(chunk.text, start / rate, end / rate)
                   for chunk, (start, end) in zip(chunks, joined.spans)]
    return Generation(joined.samples, rate, chunk_audio, speech.seed, speech.chunked,
                      joined.settled)


def generate(loaded: LoadedModel, ref_samples: np.ndarray, ref_rate: int, ref_text: str,
             text, *, seed: int, speed: float = 1.0, nfe_step: int = 32,
             cfg_strength: float = 2.0, max_chunk_seconds: float = DEFAULT_MAX_CHUNK_SECONDS,
             remove_silence: bool = False, check: Optional[Callable[[], None]] = None,
             progress: Optional[Callable[[int, int], None]] = None) -> Generation:
    """Speak ``text`` (a PreparedText, or a string) in the voice of the reference;
    same inputs and seed, same samples.

    The chunks of a long text go through the model together, in packed batches
    (render); each chunk's noise comes from its own seed, so a chunk's audio
    does not depend on the batch it shares. ``check`` runs before each batch
    (it raises to stop a job whose worker is stopping); ``progress(done,
    total)`` after each, in chunks.
    """
    speech = plan_speech(loaded, ref_samples, ref_rate, ref_text, text, seed=seed, speed=speed,
                         cfg_strength=cfg_strength, max_chunk_seconds=max_chunk_seconds)

    def done(finished: list, waves: list) -> None:
        if progress is not None:
            progress(sum(wave is not None for wave in waves), len(waves))

    waves = render(loaded, speech.plans, nfe_step, check=check, on_batch=done)
    return assemble(loaded, speech, waves, remove_silence)


def render(loaded: LoadedModel, plans: list, steps: int, *,
           check: Optional[Callable[[], None]] = None,
           on_batch: Optional[Callable[[list, list], None]] = None) -> list:
    """Each plan's audio (float32 samples, the vocoder's), in order. After each
    batch ``on_batch(indices, waves)`` gets the indices just finished and every
    wave so far (None where not yet made)."""
    waves: list = [None] * len(plans)
    for group, waves in render_batches(loaded, plans, steps, check=check):
        if on_batch is not None:
            on_batch(group, waves)
    return waves


def render_batches(loaded: LoadedModel, plans: list, steps: int, *,
                   check: Optional[Callable[[], None]] = None,
                   first_alone: bool = False) -> Iterator[tuple]:
    """(indices, waves) as each batch holding some of ``plans`` finishes. The
    plans (each with its own reference and guidance) go to the model's
    scheduler, whose batches the chunks of other jobs share; with
    ``first_alone`` the first plan goes in a batch without the others (the
    first part of a stream comes early). ``check`` runs before each wait."""
    if any(plan.ref is None or plan.cfg_strength is None for plan in plans):
        raise ValueError("render needs plans that carry their reference and cfg_strength")
    runner = _scheduler(loaded)
    ticket = runner.submit(plans, steps, first_alone)
    for group in runner.results(ticket, check):
        yield group, ticket.waves


def _scheduler(loaded: LoadedModel) -> Scheduler:
    with _SCHEDULER_LOCK:
        if loaded.scheduler is None:
            loaded.scheduler = Scheduler(lambda plans, steps: _run_batch(loaded, plans, steps),
                                         lambda: _limits(loaded))
        return loaded.scheduler


def _limits(loaded: LoadedModel) -> tuple:
    # A backbone other than DiT takes one plan at a time.
    return (MAX_BATCH_CHUNKS, MAX_BATCH_FRAMES) if loaded.packed else (1, MAX_BATCH_FRAMES)


def _run_batch(loaded: LoadedModel, plans: list, steps: int) -> list:
    """One packed batch, sampled and vocoded (on the scheduler's thread)."""
    import torch

    with cuda_guard(), torch.inference_mode():
        mels = sample_batch(loaded, None, plans, steps, 0.0)
        return [_vocode(loaded, mel, plan.ref.rms) for plan, mel in zip(plans, mels)]


def plan_chunks(loaded: LoadedModel, ref: PreparedReference, ref_text: str, chunks: list,
                seed: int, speed: float, *, cfg_strength: Optional[float] = None,
                gen_frames: Optional[int] = None) -> list:
    """Each chunk's model text, length in frames and seed, by the package's rules.
    ``gen_frames`` fixes the generated length instead (F5-TTS's fixed duration)."""
    from f5_tts.model.utils import convert_char_to_pinyin

    ref_text = ref_text + " " if len(ref_text[-1].encode("utf-8")) == 1 else ref_text
    ref_len = len(ref_text.encode("utf-8"))
    plans = []
    for index, chunk in enumerate(chunks):
        # Very short chunks get a slow pace, as the package does, or they come out clipped.
        local_speed = 0.3 if len(chunk.encode("utf-8")) < 10 else speed
        frames = ref.frames + (gen_frames if gen_frames is not None else
                               int(ref.frames / ref_len * len(chunk.encode("utf-8")) / local_speed))
        tokens = convert_char_to_pinyin([ref_text + chunk])[0]
        plans.append(ChunkPlan(chunk, tokens, frames, chunk_seed(seed, index), ref,
                               cfg_strength))
    return plans


def sample_batch(loaded: LoadedModel, ref: Optional[PreparedReference], plans: list,
                 steps: int, cfg_strength: float) -> list:
    """Generated mels for ``plans``, sampled together (sampler.sample). A plan with its
    own ``ref`` or ``cfg_strength`` uses them instead of the batch's, so the chunks of
    different jobs can share one batch; each plan comes out as it would alone, and
    one plan alone gives what ``CFM.sample(seed=plan.seed)`` gives."""
    items = []
    for plan in plans:
        reference = plan.ref or ref
        if reference is None:
            raise ValueError("a plan without its own reference needs the batch's")
        strength = cfg_strength if plan.cfg_strength is None else plan.cfg_strength
        items.append(SampleItem(plan.tokens, plan.frames, plan.seed, reference.mel,
                                reference.frames, strength))
    return sampler.sample(loaded, items, steps)


def _vocode(loaded: LoadedModel, mel, ref_rms: float) -> np.ndarray:
    mel = mel.unsqueeze(0).to(dtype=next(loaded.vocoder.parameters()).dtype)
    wave = loaded.vocoder.decode(mel.permute(0, 2, 1))
    if ref_rms < TARGET_RMS:
        wave = wave * ref_rms / TARGET_RMS
    return wave.squeeze().float().cpu().numpy()



def warm_up(loaded: LoadedModel) -> None:
    """Run one chunk, then a batch of two chunks of different lengths."""
    import torch

    started = time.monotonic()
    rate = loaded.sample_rate
    tone = (0.1 * np.sin(np.linspace(0, 440 * 2 * np.pi * 2, 2 * rate))).astype(np.float32)
    with torch.inference_mode():
        ref = prepare_reference(loaded, tone, rate)
        for texts in (["Warm up."], ["Warm up the model.", "Warm up."]):
            plans = plan_chunks(loaded, ref, "A tone.", texts, 0, 1.0)
            sample_batch(loaded, ref, plans, 2, 2.0)
    log.info("torch.compile warm-up took %.1f s", time.monotonic() - started)
