"""Start-up: the model cache folder, the start sequence, health facts, fitness.

``prepare_worker`` runs once before the RunPod loop: flash-attn, the lazy
installs (lazy_install.py), the model cache sync (model_sync.py), then the
optional preload. Optional steps are logged and reported, never fatal;
``fitness_check`` is where a worker that cannot work stops. Imports no torch
at import time.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import logging
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional

from s3_utils import Storage, get_storage
from settings import Settings
from worker.core import keys
from worker.core.errors import WorkerError
from worker.startup.lazy_install import (
    FLASH_ATTN,
    LAZY_PACKAGES,
    InstallOptions,
    LazyPackage,
    install_flash_attn,
    install_missing,
    is_present,
    package_states,
)
from worker.startup.model_sync import sync_models_down, upload_missing_models

log = logging.getLogger(__name__)

GB = 1e9
CACHE_SUBDIR = "f5tts-cache"
MODELS_BYTES = 5 * 1024 ** 3   # F5TTS_v1_Base, vocos, whisper turbo, an align model


@dataclass
class StartupReport:
    packages: dict = field(default_factory=dict)
    flash_attn: str = "not attempted: start-up has not run"
    cache_dir: str = ""
    cache_sync: str = "disabled"
    timing_methods_available: list = field(default_factory=list)


def _free(path: Path) -> int:
    return shutil.disk_usage(path).free


def _default_bases() -> tuple:
    return (Path("/runpod-volume"), Path(tempfile.gettempdir()), Path.home() / ".cache")


def choose_cache_dir(settings: Settings, bases: Optional[Iterable[Path]] = None,
                     free_space: Callable[[Path], int] = _free) -> Path:
    """MODEL_CACHE_DIR, else the writable base with most free space and room for models."""
    if settings.model_cache_dir:
        return Path(settings.model_cache_dir)
    usable = [Path(b) for b in (bases or _default_bases())
              if Path(b).is_dir() and os.access(b, os.W_OK)]
    if not usable:
        return Path(tempfile.gettempdir()) / CACHE_SUBDIR
    free = {base: free_space(base) for base in usable}
    roomy = [base for base in usable if free[base] >= MODELS_BYTES] or usable
    return max(roomy, key=lambda base: free[base]) / CACHE_SUBDIR


def cache_dir_of(settings: Settings, report: Optional[StartupReport]) -> Path:
    """The folder start-up chose; chosen now only where no start-up ran (a
    plain ``handler.handler`` call from Python)."""
    if report is not None and report.cache_dir:
        return Path(report.cache_dir)
    return choose_cache_dir(settings)


def configure_cache_env(cache_dir: Path) -> None:
    """Point the libraries' caches inside cache_dir; an operator's explicit value wins."""
    # Writing (not reading) these is the point: hub, torch and nltk read them
    # when first imported, so this must run before the model code imports them.
    defaults = {"HF_HOME": cache_dir / "hf", "HF_HUB_CACHE": cache_dir / "hf" / "hub",
                "TORCH_HOME": cache_dir / "torch", "NLTK_DATA": cache_dir / "nltk_data",
                "XDG_CACHE_HOME": cache_dir / "xdg"}
    for name, path in defaults.items():
        path.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault(name, str(path))


def timing_methods(settings: Settings, packages: dict) -> list:
    methods = []
    if packages.get("whisperx") == "installed":
        methods.append("whisperx")
    # Same rule as worker.timing.chain.available_methods: Google needs credentials.
    google_access = settings.google_application_credentials or settings.google_credentials_json
    if packages.get("google-cloud-speech") == "installed" and google_access:
        methods.append("google")
    return methods + ["estimate"]


def _step(name: str, action: Callable[[], object], default) -> object:
    """Run an optional start-up step; its failure is logged and reported, never fatal."""
    started = time.monotonic()
    try:
        result = action()
    except Exception as exc:
        log.exception("startup: %s failed", name)
        result = default(f"failed: {type(exc).__name__}: {exc}")
    log.info("startup: %s: %s (%.1f s)", name, result, time.monotonic() - started)
    return result


def prepare_worker(settings: Settings, preload: Optional[Callable[[], object]] = None, *,
                   storage: Optional[Storage] = None,
                   installs: Optional[InstallOptions] = None,
                   packages: Iterable[LazyPackage] = LAZY_PACKAGES) -> StartupReport:
    """flash-attn, lazy installs, cache sync, then preload() with PRELOAD_MODEL=true.

    The cache folder is chosen here once; the report carries it to the jobs.
    """
    cache_dir = choose_cache_dir(settings)
    configure_cache_env(cache_dir)
    log.info("startup: model cache in %s (%.1f GB free)", cache_dir, _free(cache_dir) / GB)
    # One deadline for every install of this start, whatever the number of calls.
    options = installs or InstallOptions()
    options = dataclasses.replace(options, deadline=options.clock() + options.budget_s)
    # flash-attn first: a small --no-deps wheel, before any large download.
    flash = _step("flash-attn", lambda: install_flash_attn(settings, options=options), str)
    wanted = list(packages)
    packages = _step("packages", lambda: install_missing(settings, wanted, options=options),
                     lambda why: {p.name: why for p in wanted})
    def get() -> Storage:
        return storage or get_storage(settings)

    sync = _step("model cache sync", lambda: sync_models_down(settings, get(), cache_dir)
                 if settings.enable_s3_model_cache else "disabled", str)
    report = StartupReport(packages, flash, str(cache_dir), sync,
                           timing_methods(settings, packages))
    log.info("startup: timing methods available: %s", ", ".join(report.timing_methods_available))
    if settings.preload_model and preload is not None:
        loaded = _step("preload", lambda: _call(preload, "model loaded"), str)
        if settings.enable_s3_model_cache and loaded == "model loaded":
            upload_missing_models(settings, get(), cache_dir)
    return report


def _call(function: Callable[[], object], outcome: str) -> str:
    function()
    return outcome


def _device(settings: Settings) -> tuple:
    """(device, gpu name or None); imports torch only when the device is not fixed."""
    if settings.device == "cpu" or not is_present_module("torch"):
        return "cpu", None
    import torch

    if not torch.cuda.is_available():
        return "cpu", None
    return "cuda", torch.cuda.get_device_name(0)


def is_present_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def health_facts(settings: Settings, report: Optional[StartupReport] = None, *,
                 packages: Iterable = LAZY_PACKAGES) -> dict:
    """Cheap facts for the health action: no pip, no model, no download."""
    states = package_states(packages)
    for name, state in (report.packages if report else {}).items():
        if states.get(name) != "installed" and str(state).startswith("failed"):
            states[name] = state   # keep why the start-up install failed
    device, gpu = _device(settings)
    probe = cache_dir_of(settings, report).absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return {"packages": states, "timing_methods_available": timing_methods(settings, states),
            "disk_free_gb": round(_free(probe) / GB, 1), "device": device, "gpu": gpu,
            "flash_attn": _flash_state(settings, device, report)}


def _flash_state(settings: Settings, device: str, report: Optional[StartupReport]) -> str:
    if device != "cuda":
        return "not attempted: no CUDA device"
    if is_present(FLASH_ATTN):
        return "installed"
    if report is not None:
        return report.flash_attn
    if settings.flash_attn_wheel_url == "":
        return "not attempted: FLASH_ATTN_WHEEL_URL is empty"
    return "missing"


def fitness_check(settings: Settings, storage: Optional[Storage] = None) -> None:
    """Raise RuntimeError naming what to fix when a required part cannot work."""
    problems = [p for p in (_check_packages(), _check_cache_dir(settings),
                            _check_storage(settings, storage)) if p]
    if problems:
        raise RuntimeError("worker cannot start: " + "; ".join(problems))


def _check_packages() -> Optional[str]:
    missing = [name for name in ("torch", "f5_tts") if not is_present_module(name)]
    if missing:
        return f"{', '.join(missing)} not installed: rebuild the image with requirements.txt"
    return None


def _check_cache_dir(settings: Settings) -> Optional[str]:
    cache_dir = choose_cache_dir(settings)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cache_dir, prefix=".fitness-"):
            pass
    except OSError as exc:
        return (f"model cache folder {cache_dir} is not writable ({exc.strerror or exc}): "
                "set MODEL_CACHE_DIR to a writable folder")
    return None


def _check_storage(settings: Settings, storage: Optional[Storage]) -> Optional[str]:
    key = keys.fitness_probe(uuid.uuid4().hex)
    try:
        storage = storage or get_storage(settings)
        storage.put_bytes(key, b"ok")
        storage.delete([key])
    except (WorkerError, OSError) as exc:
        return f"storage ({settings.storage_backend}) is not usable: {exc}"
    return None
