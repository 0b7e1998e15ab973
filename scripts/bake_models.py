"""Put the worker's model files into the image at build time (Dockerfile.runpod).

``download`` fetches, into the cache layout the worker uses (HF_HUB_CACHE,
NLTK_DATA and MODEL_CACHE_DIR/alignment, set by the Dockerfile): the F5-TTS
checkpoint, the vocos vocoder, the reference transcription model, NLTK's
punkt_tab (WhisperX loads it at every alignment) and the English aligner.
``check`` runs with HF_HUB_OFFLINE=1 and loads each from the cache alone, so
an image that would reach for the network at run time fails to build instead.

Self-contained on purpose (the worker's source is copied after this layer);
tests/test_delivery.py keeps its names in step with worker/inference/models.py.
"""
from __future__ import annotations

import argparse
import io
import logging
import sys
import urllib.request
import zipfile
from pathlib import Path

log = logging.getLogger("bake_models")

# The same hub paths worker.inference.models.CHECKPOINTS and VOCODER_REPO name.
F5_REPO, F5_FILE = "SWivid/F5-TTS", "F5TTS_v1_Base/model_1250000.safetensors"
VOCODER_REPO, VOCODER_FILES = "charactr/vocos-mel-24khz", ("config.yaml", "pytorch_model.bin")
ASR_MODEL = "openai/whisper-large-v3-turbo"
ASR_FILES = ("*.json", "*.txt", "*.safetensors")
ALIGN_BUNDLE = "WAV2VEC2_ASR_BASE_960H"   # whisperx's default English aligner
PUNKT_URL = ("https://raw.githubusercontent.com/nltk/nltk_data/gh-pages/packages/"
             "tokenizers/punkt_tab.zip")
PUNKT_FILES = ("abbrev_types.txt", "collocations.tab", "sent_starters.txt",
               "ortho_context.tab")


def hub_files() -> list:
    """(repo, filename) of every single hub file the worker loads by name."""
    return [(F5_REPO, F5_FILE)] + [(VOCODER_REPO, name) for name in VOCODER_FILES]


def download(cache_dir: Path, asr_model: str, nltk_dir: Path) -> None:
    from huggingface_hub import hf_hub_download, snapshot_download

    for repo, filename in hub_files():
        log.info("hub: %s/%s", repo, filename)
        hf_hub_download(repo_id=repo, filename=filename)
    log.info("hub: %s", asr_model)
    snapshot_download(asr_model, allow_patterns=list(ASR_FILES))
    _download_punkt(nltk_dir)
    _align_model(cache_dir)


def _download_punkt(nltk_dir: Path) -> None:
    log.info("nltk: punkt_tab into %s", nltk_dir)
    with urllib.request.urlopen(PUNKT_URL, timeout=120) as response:  # noqa: S310 - fixed https URL
        data = response.read()
    target = nltk_dir / "tokenizers"
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(target)


def _align_model(cache_dir: Path):
    import torchaudio

    # word_timing passes MODEL_CACHE_DIR/alignment to whisperx as its model_dir.
    bundle = getattr(torchaudio.pipelines, ALIGN_BUNDLE)
    log.info("aligner: %s into %s", ALIGN_BUNDLE, cache_dir / "alignment")
    return bundle.get_model(dl_kwargs={"model_dir": str(cache_dir / "alignment")})


def check(cache_dir: Path, asr_model: str, nltk_dir: Path) -> None:
    """Load everything with the hub offline; raise when anything is missing."""
    from huggingface_hub import constants, hf_hub_download

    if not constants.HF_HUB_OFFLINE:
        raise SystemExit("check needs HF_HUB_OFFLINE=1 (set by the Dockerfile)")
    for repo, filename in hub_files():
        hf_hub_download(repo_id=repo, filename=filename)
    from transformers import pipeline

    pipeline("automatic-speech-recognition", model=asr_model, device="cpu")
    missing = [name for name in PUNKT_FILES
               if not (nltk_dir / "tokenizers" / "punkt_tab" / "english" / name).is_file()]
    if missing:
        raise SystemExit(f"punkt_tab is incomplete in {nltk_dir}: {', '.join(missing)}")
    _align_model(cache_dir)
    log.info("all models load from %s with the hub offline", cache_dir)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("download", "check"))
    parser.add_argument("--cache-dir", type=Path, required=True,
                        help="MODEL_CACHE_DIR of the image")
    parser.add_argument("--asr-model", default=ASR_MODEL, help="ASR_MODEL the worker will use")
    parser.add_argument("--nltk-dir", type=Path, help="NLTK_DATA (default: CACHE_DIR/nltk_data)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    nltk_dir = args.nltk_dir or args.cache_dir / "nltk_data"
    step = download if args.step == "download" else check
    step(args.cache_dir, args.asr_model, nltk_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
