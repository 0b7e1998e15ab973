"""Lazy installs of the heavy packages the base image leaves out, and flash-attn.

Each package is installed with ``pip install --prefix <staging>``, where the
staging folder sits inside the destination (so on the same filesystem), and
its files are then renamed into place with each ``*.dist-info`` folder last.
Why this way rather than the alternatives:

- ``pip install --target`` ignores what is already installed and would pull
  torch and the rest of whisperx's dependencies a second time; ``--prefix``
  resolves against the running environment and stages only what is missing.
- Installing straight into site-packages leaves half-written files behind
  when the process is killed mid-install; with staging, a killed pip leaves
  only a ``.lazy-staging-*`` folder (removed at the next start), and a killed
  rename leaves files without their ``dist-info``, which counts as missing and
  is completed by the next install.
- Every distribution already installed is passed to pip as a constraint at
  its installed version, and uv.lock's versions pin everything else, so a
  lazy install adds known versions but never upgrades or downgrades a package
  the worker already uses; one that would need that fails with pip's reason.

The install is verified by importing the package from the staging folder in a
child process before anything is moved, so a package that does not import is
never put in place. This module imports no torch at import time.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import importlib
import importlib.metadata
import logging
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from importlib.machinery import PathFinder
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

from settings import Settings
from worker.startup import lock

log = logging.getLogger(__name__)

STAGING_PREFIX = ".lazy-staging-"
LOCK_NAME = ".lazy-install.lock"
MB = 1024 * 1024


@dataclass(frozen=True)
class LazyPackage:
    name: str            # the distribution pip installs
    import_name: str     # the module whose import proves it works
    size_mb: int         # disk it takes with the dependencies the image lacks
    version: Optional[str] = None  # None: the version uv.lock pins
    source: Optional[str] = None   # a wheel URL or path instead of name==version
    no_deps: bool = False

    @property
    def requirement(self) -> str:
        return self.source or f"{self.name}=={self.version or lock.version(self.name)}"


# The one table of lazily installed packages (flash-attn is installed apart,
# on CUDA only, from a wheel that matches the platform).
LAZY_PACKAGES = (
    # Sizes: installed size of what each adds to an f5-tts image, plus the
    # downloaded wheels pip keeps while installing.
    # The names are uv.lock's timing group (a test keeps them equal).
    LazyPackage("whisperx", "whisperx", 700),
    LazyPackage("google-cloud-speech", "google.cloud.speech", 60),
)
# Not in the lock: its wheel must match the CUDA, torch and Python at hand.
FLASH_ATTN = LazyPackage("flash-attn", "flash_attn", 450, version="2.8.3", no_deps=True)

# What the official flash-attn v2.8.3 release publishes (CUDA 12 builds).
FLASH_ATTN_RELEASE = ("https://github.com/Dao-AILab/flash-attention/releases/"
                      "download/v{version}/{wheel}")
FLASH_ATTN_TORCH = ("2.4", "2.5", "2.6", "2.7", "2.8")
FLASH_ATTN_PYTHON = ("39", "310", "311", "312", "313")


class InstallError(Exception):
    """One install attempt failed; the message says why."""


def _free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


@dataclass(frozen=True)
class InstallOptions:
    attempts: int = 3
    backoff_s: float = 5.0            # doubled after every failed attempt
    timeout_s: float = 600.0          # per pip run
    # All installs of one start together: RunPod marks a worker unhealthy when
    # its start takes over 7 minutes, and the models still have to load.
    budget_s: float = 300.0
    # clock() when every install of this start must be done; set once per start
    # (prepare_worker) so that separate install calls share one budget.
    deadline: Optional[float] = None
    clock: Callable[[], float] = time.monotonic
    headroom_mb: int = 512            # kept free beyond the package's size
    pip: tuple = (sys.executable, "-m", "pip")
    pip_cache_dir: Optional[Path] = None   # None: pip's own
    temp_dir: Optional[Path] = None        # where pip leaves pip-* folders
    free_space: Callable[[Path], int] = _free_bytes
    sleep: Callable[[float], None] = time.sleep


def _search_paths(target: Optional[Path]) -> list:
    return ([str(target)] if target else []) + list(sys.path)


def _module_found(import_name: str, paths: Sequence[str]) -> bool:
    """find_spec without importing any parent package (namespaces included)."""
    *parents, last = import_name.split(".")
    folders = [str(Path(entry, *parents)) for entry in paths]
    folders = [folder for folder in folders if os.path.isdir(folder)]
    return PathFinder.find_spec(last, folders) is not None


def is_present(package: LazyPackage, target: Optional[Path] = None) -> bool:
    """Installed: its metadata and its module are both there (cheap, no import)."""
    importlib.invalidate_caches()
    paths = _search_paths(target)
    has_metadata = any(True for _ in importlib.metadata.distributions(
        name=package.name, path=paths))
    return has_metadata and _module_found(package.import_name, paths)


def package_states(packages: Iterable[LazyPackage] = LAZY_PACKAGES,
                   target: Optional[Path] = None) -> dict:
    return {p.name: "installed" if is_present(p, target) else "missing" for p in packages}


def install_missing(settings: Settings, packages: Optional[Sequence[LazyPackage]] = None, *,
                    target: Optional[Path] = None, find_links: Optional[str] = None,
                    index: bool = True, options: Optional[InstallOptions] = None) -> dict:
    """Install what is missing; return name -> installed | missing | failed: why."""
    packages = LAZY_PACKAGES if packages is None else packages
    options = options or InstallOptions()
    target = Path(target) if target else None
    states = package_states(packages, target)
    todo = [p for p in packages if states[p.name] != "installed"]
    if settings.lazy_install == "off" or not todo:
        return states
    dest = target or Path(sysconfig.get_paths()["purelib"])
    dest.mkdir(parents=True, exist_ok=True)
    deadline = options.deadline or options.clock() + options.budget_s
    with _install_lock(dest):
        _remove_staging(dest)
        for package in todo:
            states[package.name] = _install_one(package, dest, target,
                                                _pip_sources(find_links, index),
                                                options, deadline)
    return states


def _pip_sources(find_links: Optional[str], index: bool) -> list:
    args = [] if index else ["--no-index"]
    return args + (["--find-links", str(find_links)] if find_links else [])


@contextlib.contextmanager
def _install_lock(dest: Path):
    """Two processes never install at once; the second then finds it installed."""
    with open(dest / LOCK_NAME, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_staging(dest: Path) -> None:
    # Called under the lock: any staging folder left is from a killed install.
    for leftover in dest.glob(STAGING_PREFIX + "*"):
        shutil.rmtree(leftover, ignore_errors=True)


def _install_one(package: LazyPackage, dest: Path, target: Optional[Path],
                 sources: list, options: InstallOptions, deadline: float) -> str:
    if is_present(package, target):
        return "installed"
    shortage = _ensure_space(package, dest, options)
    if shortage:
        log.warning("lazy install: %s skipped: %s", package.name, shortage)
        return f"failed: skipped, {shortage}"
    error = "not attempted"
    for attempt in range(1, options.attempts + 1):
        left = deadline - options.clock()
        if left <= 0:
            error = f"out of start-up time ({options.budget_s:.0f} s for all installs)"
            break
        try:
            _attempt(package, dest, target, sources,
                     dataclasses.replace(options, timeout_s=min(options.timeout_s, left)))
            log.info("lazy install: %s installed", package.requirement)
            return "installed"
        except InstallError as exc:
            error = str(exc)
        log.warning("lazy install: %s failed (attempt %d of %d): %s",
                    package.name, attempt, options.attempts, error)
        if attempt < options.attempts:
            options.sleep(options.backoff_s * 2 ** (attempt - 1))
    return f"failed: {error}"


def _ensure_space(package: LazyPackage, dest: Path, options: InstallOptions) -> Optional[str]:
    """None when there is room; else why not, after cleaning pip's leftovers."""
    need = (package.size_mb + options.headroom_mb) * MB
    if options.free_space(dest) >= need:
        return None
    _clean_pip(options)
    free = options.free_space(dest)
    if free >= need:
        return None
    return (f"needs about {need / 1e9:.1f} GB free in {dest}, "
            f"{free / 1e9:.1f} GB available")


def _clean_pip(options: InstallOptions) -> None:
    command = [*options.pip, *_cache_args(options), "cache", "purge"]
    try:
        subprocess.run(command, capture_output=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("lazy install: cleaning pip's cache failed: %s", exc)
    temp = options.temp_dir or Path(tempfile.gettempdir())
    for leftover in Path(temp).glob("pip-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def _cache_args(options: InstallOptions) -> list:
    return ["--cache-dir", str(options.pip_cache_dir)] if options.pip_cache_dir else []


def _attempt(package: LazyPackage, dest: Path, target: Optional[Path],
             sources: list, options: InstallOptions) -> None:
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=dest))
    try:
        pins = staging / "constraints.txt"
        pins.write_text(_constraints(package, target))
        _run_pip(package, staging, pins, sources, options)
        site = _staged_site_packages(staging)
        _verify_import(package, [str(site)] + ([str(target)] if target else []), options)
        _merge(site, dest)
        if target is None:
            _merge_scripts(staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _constraints(package: LazyPackage, target: Optional[Path]) -> str:
    """Every installed distribution at its version, then uv.lock's pins for the rest."""
    pins = {}
    for dist in importlib.metadata.distributions(path=_search_paths(target)):
        name = dist.metadata["Name"]
        if name and lock.canonical(name) != lock.canonical(package.name):
            pins.setdefault(lock.canonical(name), f"{name}=={dist.version}")
    if not package.source:
        for name, version in lock.pins().items():
            if name != lock.canonical(package.name):
                pins.setdefault(name, f"{name}=={version}")
    return "\n".join(sorted(pins.values())) + "\n"


def _run_pip(package: LazyPackage, staging: Path, pins: Path, sources: list,
             options: InstallOptions) -> None:
    command = [*options.pip, "install", "--prefix", str(staging), "--no-input",
               "--disable-pip-version-check", "--no-warn-script-location",
               "--progress-bar", "off", *_cache_args(options), *sources,
               "-c", str(pins)]
    command += (["--no-deps"] if package.no_deps else []) + [package.requirement]
    try:
        result = subprocess.run(command, capture_output=True, text=True,
                                timeout=options.timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise InstallError(f"pip ran over {options.timeout_s:.0f} s") from None
    if result.returncode != 0:
        raise InstallError(f"pip exited {result.returncode}: {_pip_reason(result.stderr)}")


def _pip_reason(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    return ((errors or lines or ["no output"])[0])[:300]


def _staged_site_packages(staging: Path) -> Path:
    found = sorted(staging.glob("lib*/python*/site-packages"))
    if not found:
        raise InstallError(f"pip left no site-packages under {staging}")
    return found[0]


def _verify_import(package: LazyPackage, paths: list, options: InstallOptions) -> None:
    # A child process, so a broken package cannot leave half-imported modules here.
    code = f"import sys; sys.path[:0] = {paths!r}; import {package.import_name}"
    try:
        result = subprocess.run([sys.executable, "-c", code], capture_output=True,
                                text=True, timeout=options.timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise InstallError(f"importing {package.import_name} hung") from None
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise InstallError(f"import {package.import_name} failed: {last[:300]}")


def _merge(source: Path, dest: Path) -> None:
    """Rename entries into dest; dist-info folders last, so metadata means complete."""
    for entry in sorted(source.iterdir(), key=lambda p: p.name.endswith(".dist-info")):
        target = dest / entry.name
        if entry.is_dir() and not entry.is_symlink() and target.is_dir():
            _merge(entry, target)   # shared namespaces such as google/
            continue
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(entry, target)


def _merge_scripts(staging: Path) -> None:
    scripts = staging / "bin"
    if scripts.is_dir():
        _merge(scripts, Path(sysconfig.get_paths()["scripts"]))


def flash_attn_wheel(cuda: str, torch_version: str, python: str, cxx11_abi: bool,
                     machine: str = "x86_64") -> Optional[str]:
    """URL of the official prebuilt flash-attn wheel for this platform, or None."""
    cuda_major = cuda.split(".")[0]
    torch_minor = ".".join(torch_version.split("+")[0].split(".")[:2])
    py = python.lower().removeprefix("cp").replace(".", "")
    if cuda_major != "12" or machine != "x86_64":
        return None
    if torch_minor not in FLASH_ATTN_TORCH or py not in FLASH_ATTN_PYTHON:
        return None
    if torch_minor == "2.4" and py == "313":   # torch 2.4 has no Python 3.13 build
        return None
    abi = "TRUE" if cxx11_abi else "FALSE"
    wheel = (f"flash_attn-{FLASH_ATTN.version}+cu12torch{torch_minor}cxx11abi{abi}"
             f"-cp{py}-cp{py}-linux_x86_64.whl")
    return FLASH_ATTN_RELEASE.format(version=FLASH_ATTN.version, wheel=wheel)


def cuda_platform() -> Optional[dict]:
    """CUDA, torch, Python and ABI of this process, or None without a CUDA device."""
    import torch  # only here: flash-attn is a CUDA matter

    if torch.version.cuda is None or not torch.cuda.is_available():
        return None
    return {"cuda": torch.version.cuda, "torch_version": torch.__version__,
            "python": f"{sys.version_info.major}.{sys.version_info.minor}",
            "cxx11_abi": bool(torch._C._GLIBCXX_USE_CXX11_ABI),
            "machine": os.uname().machine}


def install_flash_attn(settings: Settings, *, probe: Callable[[], Optional[dict]] = cuda_platform,
                       target: Optional[Path] = None,
                       options: Optional[InstallOptions] = None) -> str:
    """installed | not attempted: why | failed: why. ``probe``: cuda_platform's shape."""
    if settings.flash_attn_wheel_url == "":
        return "not attempted: FLASH_ATTN_WHEEL_URL is empty"
    platform = None if settings.device == "cpu" else probe()
    if platform is None:
        return "not attempted: no CUDA device"
    if is_present(FLASH_ATTN, target):
        return "installed"
    if settings.lazy_install == "off":
        return "not attempted: LAZY_INSTALL=off"
    url = settings.flash_attn_wheel_url or flash_attn_wheel(**platform)
    if url is None:
        return (f"not attempted: no prebuilt flash-attn {FLASH_ATTN.version} wheel for "
                f"CUDA {platform['cuda']}, torch {platform['torch_version']}, Python "
                f"{platform['python']}, C++11 ABI {platform['cxx11_abi']}; "
                "set FLASH_ATTN_WHEEL_URL to one that matches")
    package = dataclasses.replace(FLASH_ATTN, source=url)
    states = install_missing(settings, [package], target=target, options=options)
    return states[FLASH_ATTN.name]
