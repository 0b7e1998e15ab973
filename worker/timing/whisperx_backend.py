"""WhisperX forced alignment of the known text (wav2vec2 CTC), chunk by chunk.

whisperx and torch are imported inside the functions that need them.
"""
from __future__ import annotations

import logging
import math
from typing import List

from worker.text.words import join_words
from worker.timing.backend import ALIGN_RATE, MethodUnavailable, chunk_groups
from worker.timing.spans import Recognized, speech_regions

log = logging.getLogger(__name__)

# (language, align model, device) -> (model, metadata). Loading an aligner takes
# seconds and hundreds of MB, so each is loaded once per process.
_ALIGNERS: dict = {}


def _device(settings) -> str:
    if settings.device == "cuda":
        return "cuda"
    if settings.device == "auto":
        import torch

        if torch.cuda.is_available():
            return "cuda"
    return "cpu"


def _aligner(whisperx, language: str, settings):
    device = _device(settings)
    key = (language, settings.align_model, device)
    if key not in _ALIGNERS:
        # Keep downloaded aligners with the other models, so the model cache
        # (and its S3 mirror) holds them too.
        model_dir = (str(settings.model_cache_dir / "alignment")
                     if settings.model_cache_dir else None)
        log.info("loading the %s aligner (%s) on %s", language,
                 settings.align_model or "whisperx default", device)
        _ALIGNERS[key] = whisperx.load_align_model(
            language, device, model_name=settings.align_model, model_dir=model_dir)
    model, metadata = _ALIGNERS[key]
    return model, metadata, device


def recognize(words, audio16, chunks, language, settings) -> List[Recognized]:
    try:
        import whisperx
    except (ImportError, OSError) as exc:
        raise MethodUnavailable(f"whisperx cannot be imported ({exc})") from None
    model, metadata, device = _aligner(whisperx, language, settings)
    recognized: List[Recognized] = []
    for first, end, start, stop in chunk_groups(words, chunks, audio16.size / ALIGN_RATE):
        piece = audio16[int(start * ALIGN_RATE):int(stop * ALIGN_RATE)]
        if piece.size == 0:
            continue
        # The known text is the segment: alignment only, no transcription.
        segment = {"text": join_words(words[first:end]), "start": 0.0,
                   "end": piece.size / ALIGN_RATE}
        result = whisperx.align([segment], model, metadata, piece, device,
                                return_char_alignments=False)
        timed = _whisperx_timed(result.get("word_segments", []), start)
        recognized.extend(_inside_speech(timed, piece, start))
    return recognized


def _inside_speech(timed: List[Recognized], piece, offset: float) -> List[Recognized]:
    """CTC gives the leading silence to the first character and the trailing
    one to the last: pull those two edges in to where the sound starts and ends
    (a low threshold, so quiet consonants stay inside)."""
    regions = speech_regions(piece, ALIGN_RATE, relative=0.02)
    if not timed or not regions:
        return timed
    onset, offset_end = offset + regions[0][0], offset + regions[-1][1]
    word, start, end, score = timed[0]
    if start < onset < end:
        timed[0] = (word, onset, end, score)
    word, start, end, score = timed[-1]
    if start < offset_end < end:
        timed[-1] = (word, start, offset_end, score)
    return timed


def _whisperx_timed(word_segments, offset: float) -> List[Recognized]:
    """The words WhisperX really aligned; those without a score it only
    interpolated, and ours interpolates them the same way for every method."""
    timed = []
    for item in word_segments:
        values = [item.get(key) for key in ("start", "end", "score")]
        if all(value is not None and math.isfinite(value) for value in values):
            start, end, score = (float(value) for value in values)
            timed.append((item["word"], offset + start, offset + end, min(max(score, 0.0), 1.0)))
    return timed
