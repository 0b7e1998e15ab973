"""Lazy installs for real: wheels built here, pip from a local find-links folder."""
from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from settings import load_settings
from worker.startup import lazy_install
from worker.startup.lazy_install import (
    FLASH_ATTN,
    LAZY_PACKAGES,
    InstallOptions,
    LazyPackage,
    flash_attn_wheel,
    install_flash_attn,
    install_missing,
    is_present,
)

ROOT = Path(__file__).resolve().parents[1]
DEMO = LazyPackage("lazydemo", "lazydemo", 1, version="1.0")
BROKEN = LazyPackage("lazybroken", "lazybroken", 1, version="1.0")
CUDA_128 = {"cuda": "12.8", "torch_version": "2.8.0+cu128", "python": "3.11",
            "cxx11_abi": True, "machine": "x86_64"}


def build_wheel(folder: Path, name: str, version: str, files: dict,
                requires: tuple = ()) -> Path:
    """A pure-Python wheel written by hand: fast, and exactly what pip expects."""
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    metadata = (f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                + "".join(f"Requires-Dist: {r}\n" for r in requires))
    entries = {**files, f"{info}/METADATA": metadata,
               f"{info}/WHEEL": ("Wheel-Version: 1.0\nGenerator: tests\n"
                                 "Root-Is-Purelib: true\nTag: py3-none-any\n")}
    record = []
    for path, text in entries.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(data)}")
    record.append(f"{info}/RECORD,,")
    entries[f"{info}/RECORD"] = "\n".join(record) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in entries.items():
            archive.writestr(path, text)
    return wheel


@pytest.fixture
def links(tmp_path):
    """A find-links folder: a good package (with a dependency already installed
    here) and one whose import fails."""
    folder = tmp_path / "links"
    build_wheel(folder, "lazydemo", "1.0",
                {"lazydemo/__init__.py": "import requests\nVALUE = 42\n"},
                requires=("requests",))
    build_wheel(folder, "lazybroken", "1.0",
                {"lazybroken/__init__.py": "raise ImportError('broken on purpose')\n"})
    return folder


@pytest.fixture
def pip_log(tmp_path):
    """A pip wrapper that appends each command line to a file, then runs pip."""
    log_file = tmp_path / "pip-calls.txt"
    wrapper = tmp_path / "pipwrap.py"
    wrapper.write_text(
        "import os, sys\n"
        f"with open({str(log_file)!r}, 'a') as log:\n"
        "    log.write(' '.join(sys.argv[1:]) + '\\n')\n"
        "os.execv(sys.executable, [sys.executable, '-m', 'pip', *sys.argv[1:]])\n")
    log_file.touch()
    return wrapper, log_file


def options(tmp_path, pip_log, **changes) -> InstallOptions:
    values = {"pip": (sys.executable, str(pip_log[0])), "pip_cache_dir": tmp_path / "pipcache",
              "temp_dir": tmp_path / "temp", "sleep": lambda seconds: None,
              "free_space": lambda path: 10 ** 12}
    values.update(changes)
    return InstallOptions(**values)


def installs(log_file: Path) -> list:
    return [line for line in log_file.read_text().splitlines() if line.startswith("install")]


def settings(**env):
    return load_settings(env)


def imports_from(target: Path, module: str) -> str:
    code = (f"import sys; sys.path.insert(0, {str(target)!r}); "
            f"import {module}; print({module}.VALUE)")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_missing_package_is_installed_next_to_what_is_already_there(tmp_path, links, pip_log):
    target = tmp_path / "site"
    states = install_missing(settings(), [DEMO], target=target, find_links=str(links),
                             index=False, options=options(tmp_path, pip_log))
    assert states == {"lazydemo": "installed"}
    assert imports_from(target, "lazydemo") == "42"
    assert (target / "lazydemo-1.0.dist-info" / "METADATA").is_file()
    # requests was already installed here, so it was neither staged nor copied.
    assert not (target / "requests").exists()
    assert not list(target.glob(".lazy-staging-*"))
    assert len(installs(pip_log[1])) == 1


def test_present_package_is_left_alone(tmp_path, links, pip_log):
    target = tmp_path / "site"
    run = dict(target=target, find_links=str(links), index=False,
               options=options(tmp_path, pip_log))
    install_missing(settings(), [DEMO], **run)
    before = (target / "lazydemo" / "__init__.py").stat().st_ino
    assert install_missing(settings(), [DEMO], **run) == {"lazydemo": "installed"}
    assert (target / "lazydemo" / "__init__.py").stat().st_ino == before
    assert len(installs(pip_log[1])) == 1


def test_package_already_importable_here_is_not_installed(tmp_path, pip_log):
    requests_pkg = LazyPackage("requests", "requests", 1, version="0.0")
    states = install_missing(settings(), [requests_pkg], target=tmp_path / "site",
                             options=options(tmp_path, pip_log))
    assert states == {"requests": "installed"}
    assert installs(pip_log[1]) == []


def test_failing_package_is_retried_with_backoff_then_failed(tmp_path, links, pip_log):
    target = tmp_path / "site"
    sleeps = []
    opts = options(tmp_path, pip_log, attempts=3, backoff_s=2.0, sleep=sleeps.append)
    states = install_missing(settings(), [BROKEN], target=target, find_links=str(links),
                             index=False, options=opts)
    assert states["lazybroken"].startswith("failed: import lazybroken failed")
    assert "broken on purpose" in states["lazybroken"]
    assert sleeps == [2.0, 4.0]
    assert len(installs(pip_log[1])) == 3
    # A package that does not import is never put in place.
    assert not (target / "lazybroken").exists()
    assert not list(target.glob("lazybroken-*.dist-info"))
    assert not list(target.glob(".lazy-staging-*"))


def test_unavailable_package_reports_pips_reason(tmp_path, links, pip_log):
    ghost = LazyPackage("lazyghost", "lazyghost", 1, version="1.0")
    states = install_missing(settings(), [ghost], target=tmp_path / "site",
                             find_links=str(links), index=False,
                             options=options(tmp_path, pip_log, attempts=2))
    assert states["lazyghost"].startswith("failed: pip exited 1: ERROR:")
    assert "lazyghost" in states["lazyghost"]
    assert len(installs(pip_log[1])) == 2


def test_low_disk_cleans_pip_then_skips(tmp_path, links, pip_log):
    leftover = tmp_path / "temp" / "pip-unpack-old"
    leftover.mkdir(parents=True)
    # The free-space probe is injected: this machine cannot be made short of disk.
    opts = options(tmp_path, pip_log, free_space=lambda path: 100 * 1024 * 1024)
    target = tmp_path / "site"
    states = install_missing(settings(), [DEMO], target=target, find_links=str(links),
                             index=False, options=opts)
    assert states["lazydemo"].startswith("failed: skipped, needs about")
    calls = pip_log[1].read_text()
    assert "cache purge" in calls and installs(pip_log[1]) == []
    assert not leftover.exists()
    assert not (target / "lazydemo").exists()


def test_low_disk_installs_when_cleaning_made_room(tmp_path, links, pip_log):
    probes = iter([100 * 1024 * 1024] + [10 ** 12] * 10)
    opts = options(tmp_path, pip_log, free_space=lambda path: next(probes))
    states = install_missing(settings(), [DEMO], target=tmp_path / "site",
                             find_links=str(links), index=False, options=opts)
    assert states == {"lazydemo": "installed"}
    assert "cache purge" in pip_log[1].read_text()


def test_interrupted_install_is_completed_at_next_start(tmp_path, links, pip_log):
    target = tmp_path / "site"
    # What a killed start leaves: a staging folder, and files without dist-info.
    (target / ".lazy-staging-dead" / "lib").mkdir(parents=True)
    (target / "lazydemo").mkdir()
    (target / "lazydemo" / "__init__.py").write_text("VALUE = 'half'\n")
    assert not is_present(DEMO, target)
    states = install_missing(settings(), [DEMO], target=target, find_links=str(links),
                             index=False, options=options(tmp_path, pip_log))
    assert states == {"lazydemo": "installed"}
    assert imports_from(target, "lazydemo") == "42"
    assert not (target / ".lazy-staging-dead").exists()


def test_installs_stop_when_the_start_up_budget_is_spent(tmp_path, links, pip_log):
    states = install_missing(settings(), [DEMO], target=tmp_path / "site",
                             find_links=str(links), index=False,
                             options=options(tmp_path, pip_log, budget_s=0))
    assert states["lazydemo"].startswith("failed: out of start-up time")
    assert installs(pip_log[1]) == []


def test_lazy_install_off_installs_nothing(tmp_path, links, pip_log):
    states = install_missing(settings(LAZY_INSTALL="off"), [DEMO], target=tmp_path / "site",
                             find_links=str(links), index=False,
                             options=options(tmp_path, pip_log))
    assert states == {"lazydemo": "missing"}
    assert pip_log[1].read_text() == ""


def test_two_processes_started_together_install_once(tmp_path, links, pip_log):
    target = tmp_path / "site"
    script = (
        f"import json, sys; sys.path.insert(0, {str(ROOT)!r})\n"
        "from worker.startup.lazy_install import InstallOptions, LazyPackage, install_missing\n"
        "from settings import load_settings\n"
        f"opts = InstallOptions(pip=(sys.executable, {str(pip_log[0])!r}),"
        f" pip_cache_dir={str(tmp_path / 'pipcache')!r})\n"
        "states = install_missing(load_settings({}), [LazyPackage('lazydemo', 'lazydemo',"
        f" 1, version='1.0')], target={str(target)!r}, find_links={str(links)!r}, index=False,"
        " options=opts)\n"
        "print(json.dumps(states))\n")
    children = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [child.communicate(timeout=120) for child in children]
    for child, (out, err) in zip(children, outputs):
        assert child.returncode == 0, err
        assert json.loads(out) == {"lazydemo": "installed"}
    assert len(installs(pip_log[1])) == 1


@pytest.mark.parametrize("cuda, torch_version, python, abi, expected", [
    ("12.8", "2.8.0+cu128", "3.11", True,
     "flash_attn-2.8.3+cu12torch2.8cxx11abiTRUE-cp311-cp311-linux_x86_64.whl"),
    ("12.4", "2.6.0", "cp310", False,
     "flash_attn-2.8.3+cu12torch2.6cxx11abiFALSE-cp310-cp310-linux_x86_64.whl"),
    ("12.1", "2.5.1+cu121", "3.13", True,
     "flash_attn-2.8.3+cu12torch2.5cxx11abiTRUE-cp313-cp313-linux_x86_64.whl"),
])
def test_flash_attn_wheel_matches_the_platform(cuda, torch_version, python, abi, expected):
    url = flash_attn_wheel(cuda, torch_version, python, abi)
    assert url == ("https://github.com/Dao-AILab/flash-attention/releases/download/"
                   f"v2.8.3/{expected}")


@pytest.mark.parametrize("cuda, torch_version, python, machine", [
    ("11.8", "2.8.0", "3.11", "x86_64"),     # no CUDA 11 builds
    ("13.0", "2.8.0", "3.11", "x86_64"),     # no CUDA 13 builds
    ("12.8", "2.9.0", "3.11", "x86_64"),     # torch newer than the release
    ("12.8", "2.3.1", "3.11", "x86_64"),     # torch older than the release
    ("12.8", "2.8.0", "3.8", "x86_64"),      # Python too old
    ("12.4", "2.4.1", "3.13", "x86_64"),     # torch 2.4 has no Python 3.13
    ("12.8", "2.8.0", "3.11", "aarch64"),    # x86_64 only
])
def test_flash_attn_wheel_none_without_a_match(cuda, torch_version, python, machine):
    assert flash_attn_wheel(cuda, torch_version, python, True, machine) is None


def no_cuda():
    return None


def cuda_here():
    # No CUDA on the test machine: the probe stands in for torch's answers.
    return dict(CUDA_128)


def test_flash_attn_not_attempted_without_cuda_or_when_skipped(tmp_path):
    assert install_flash_attn(settings(), probe=no_cuda) == "not attempted: no CUDA device"
    called = []
    assert install_flash_attn(settings(DEVICE="cpu"), probe=lambda: called.append(1)) \
        == "not attempted: no CUDA device"
    assert called == []
    assert install_flash_attn(settings(FLASH_ATTN_WHEEL_URL=""), probe=cuda_here) \
        == "not attempted: FLASH_ATTN_WHEEL_URL is empty"
    odd = dict(CUDA_128, torch_version="2.11.0")
    state = install_flash_attn(settings(), probe=lambda: odd, target=tmp_path / "site")
    assert state.startswith("not attempted: no prebuilt flash-attn")
    assert "FLASH_ATTN_WHEEL_URL" in state


def test_flash_attn_override_installs_without_dependencies(tmp_path, pip_log):
    # A stand-in flash-attn wheel whose dependency exists nowhere: only
    # --no-deps lets it install.
    wheel = build_wheel(tmp_path / "fa", "flash-attn", "2.8.3",
                        {"flash_attn/__init__.py": "VALUE = 'fa'\n"},
                        requires=("nowhere-to-be-found-dep",))
    target = tmp_path / "site"
    state = install_flash_attn(settings(FLASH_ATTN_WHEEL_URL=str(wheel)), probe=cuda_here,
                               target=target, options=options(tmp_path, pip_log))
    assert state == "installed"
    assert imports_from(target, "flash_attn") == "fa"
    call = installs(pip_log[1])[0]
    assert "--no-deps" in call and str(wheel) in call
    assert is_present(FLASH_ATTN, target)


def test_table_is_the_locked_timing_group_and_installs_locked_versions():
    import tomllib

    from worker.startup import lock

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = [requirement.split("=")[0].split("[")[0].strip().lower()
                for requirement in project["dependency-groups"]["timing"]]
    assert sorted(package.name for package in LAZY_PACKAGES) == sorted(declared)
    assert sorted(lock.group("timing")) == sorted(declared)
    for package in LAZY_PACKAGES:
        assert package.requirement == f"{package.name}=={lock.version(package.name)}"
    pins = lock.pins()
    for core, version in {"torch": "2.8.0", "torchaudio": "2.8.0", "f5-tts": "1.1.22",
                          "runpod": "1.12.0", "whisperx": "3.7.4"}.items():
        assert pins.get(core) == version, core
    # What a lazy install is constrained to: the installed set, then the lock.
    constraints = lazy_install._constraints(LAZY_PACKAGES[0], None)
    assert f"whisperx=={pins['whisperx']}" not in constraints   # the package itself is free
    assert "pyannote-audio==" in constraints.lower().replace("_", "-").replace(".", "-") \
        or "pyannote.audio==" in constraints
