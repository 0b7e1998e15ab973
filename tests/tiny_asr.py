"""A tiny Whisper folder that ``transformers.pipeline("automatic-speech-recognition")``
loads from a local path, built in well under a second with no network.

The weights are set, not trained, so the output is known: the decoder's layers
add nothing to the residual stream, the token embeddings are zero, and each
learned position embedding points at the token that position must emit. The
language detection, the forced prompt, the logits processors, the decoding and
the pipeline's chunking are all the real code; only the answer is fixed.
"""
from __future__ import annotations

from pathlib import Path

TRANSCRIPT = "Tiny whisper heard this clip."
LANGUAGE = "en"
SPECIALS = ("<|endoftext|>", "<|startoftranscript|>", f"<|{LANGUAGE}|>", "<|translate|>",
            "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>",
            "<|notimestamps|>")
D_MODEL = 32
MAX_TARGET_POSITIONS = 64
PROMPT_LENGTH = 4     # <|startoftranscript|> <|en|> <|transcribe|> <|notimestamps|>
POSITION_SCALE = 10.0


def byte_symbols() -> list:
    """GPT-2's byte-level alphabet: the symbol for each byte 0..255, in byte order."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    extra = iter(range(256, 512))
    return [chr(b) if b in printable else chr(next(extra)) for b in range(256)]


def _word_pieces(word: str) -> tuple:
    """The merges that build ``word`` (byte-level symbols) left to right, and the token."""
    symbols = byte_symbols()
    chars = [symbols[b] for b in word.encode("utf-8")]
    merges, token = [], chars[0]
    for char in chars[1:]:
        merges.append((token, char))
        token += char
    return merges, token


def vocabulary() -> tuple:
    """(vocab, merges, text token sequence): bytes, the transcript's words, specials."""
    vocab = {symbol: n for n, symbol in enumerate(byte_symbols())}
    merges, sequence = [], []
    words = TRANSCRIPT.split(" ")
    for word in words:
        word_merges, token = _word_pieces(" " + word)
        for merge in word_merges:
            if merge not in merges:
                merges.append(merge)
        for prefix in (left + right for left, right in word_merges):
            vocab.setdefault(prefix, len(vocab))
        sequence.append(token)
    for special in SPECIALS:
        vocab[special] = len(vocab)
    return vocab, merges, sequence


def build_asr_model(folder: Path) -> Path:
    """Write the model, feature extractor, tokenizer and generation config to ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab, merges, sequence = vocabulary()
    _processor(vocab, merges).save_pretrained(folder)
    ids = {token: vocab[token] for token in SPECIALS}
    model = _model(len(vocab), ids)
    _fix_output(model, [vocab[token] for token in sequence] + [ids["<|endoftext|>"]])
    model.generation_config = _generation_config(ids)
    model.save_pretrained(folder)
    return folder


def _processor(vocab: dict, merges: list):
    from transformers import WhisperFeatureExtractor, WhisperProcessor, WhisperTokenizer

    tokenizer = WhisperTokenizer(vocab=vocab, merges=merges,
                                 pad_token=SPECIALS[0],
                                 additional_special_tokens=list(SPECIALS[1:]))
    extractor = WhisperFeatureExtractor(feature_size=80, sampling_rate=16000,
                                        hop_length=160, chunk_length=30, n_fft=400)
    return WhisperProcessor(feature_extractor=extractor, tokenizer=tokenizer)


def _model(vocab_size: int, ids: dict):
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    torch.manual_seed(0)
    eos = ids["<|endoftext|>"]
    config = WhisperConfig(
        vocab_size=vocab_size, num_mel_bins=80, d_model=D_MODEL, encoder_layers=1,
        decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
        encoder_ffn_dim=64, decoder_ffn_dim=64, max_source_positions=1500,
        max_target_positions=MAX_TARGET_POSITIONS, tie_word_embeddings=False,
        pad_token_id=eos, bos_token_id=eos, eos_token_id=eos,
        decoder_start_token_id=ids["<|startoftranscript|>"],
        suppress_tokens=[], begin_suppress_tokens=[eos])
    return WhisperForConditionalGeneration(config).eval()


def _fix_output(model, emitted: list) -> None:
    """Make the decoder emit ``emitted`` (ending with <|endoftext|>) after the prompt:
    no layer writes to the residual stream, so the final layer norm sees only the
    position embedding, and the output row of the token due there matches it."""
    import torch

    distinct = list(dict.fromkeys(emitted))
    if len(distinct) > D_MODEL:
        raise ValueError(f"{len(distinct)} distinct tokens need d_model >= {len(distinct)}")
    decoder = model.model.decoder
    with torch.no_grad():
        decoder.embed_tokens.weight.zero_()
        for layer in decoder.layers:
            for linear in (layer.self_attn.out_proj, layer.encoder_attn.out_proj, layer.fc2):
                linear.weight.zero_()
                if linear.bias is not None:
                    linear.bias.zero_()
        model.proj_out.weight.zero_()
        for direction, token in enumerate(distinct):
            model.proj_out.weight[token, direction] = 1.0
        positions = decoder.embed_positions.weight
        positions.zero_()
        # Positions before the last prompt token and after the text all point at <|endoftext|>.
        positions[:, distinct.index(emitted[-1])] = POSITION_SCALE
        for offset, token in enumerate(emitted):
            row = positions[PROMPT_LENGTH - 1 + offset]
            row.zero_()
            row[distinct.index(token)] = POSITION_SCALE


def _generation_config(ids: dict):
    from transformers import GenerationConfig

    eos = ids["<|endoftext|>"]
    return GenerationConfig(
        decoder_start_token_id=ids["<|startoftranscript|>"], bos_token_id=eos,
        eos_token_id=eos, pad_token_id=eos, max_length=MAX_TARGET_POSITIONS,
        is_multilingual=True, lang_to_id={f"<|{LANGUAGE}|>": ids[f"<|{LANGUAGE}|>"]},
        task_to_id={"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]},
        no_timestamps_token_id=ids["<|notimestamps|>"], suppress_tokens=[],
        begin_suppress_tokens=[eos], forced_decoder_ids=None, return_timestamps=False)
