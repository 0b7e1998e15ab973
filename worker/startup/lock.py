"""The project's lock (uv.lock) as the one source of package versions.

The lazy installer installs the locked versions of the ``timing`` dependency
group and constrains everything it pulls in to the locked versions, so no
version is written anywhere but pyproject.toml (the ranges) and uv.lock (the
pins). The image ships uv.lock next to the code for this.
"""
from __future__ import annotations

import functools
import tomllib
from pathlib import Path
from typing import Dict, Tuple

ROOT = Path(__file__).resolve().parents[2]
LOCK_FILE = ROOT / "uv.lock"
PROJECT = "f5tts-runpod-worker"
LAZY_GROUP = "timing"


class LockError(RuntimeError):
    """uv.lock is missing or does not hold what the worker needs."""


@functools.lru_cache(maxsize=4)
def _read(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise LockError(f"cannot read {path}: {exc}") from None


def pins(path: Path = LOCK_FILE) -> Dict[str, str]:
    """Package name -> locked version, for every package locked at one version
    (a package locked at several, one per platform, is left to pip)."""
    versions: Dict[str, set] = {}
    for package in _read(path).get("package", []):
        if package.get("name") != PROJECT and "version" in package:
            versions.setdefault(canonical(package["name"]), set()).add(package["version"])
    return {name: next(iter(found)) for name, found in versions.items() if len(found) == 1}


def group(name: str = LAZY_GROUP, path: Path = LOCK_FILE) -> Tuple[str, ...]:
    """The packages of one dependency group of the project, as locked."""
    for package in _read(path).get("package", []):
        if package.get("name") == PROJECT:
            members = package.get("dev-dependencies", {}).get(name)
            if members is None:
                raise LockError(f"{path} has no dependency group {name!r}")
            return tuple(canonical(member["name"]) for member in members)
    raise LockError(f"{path} does not lock the project {PROJECT}")


def version(name: str, path: Path = LOCK_FILE) -> str:
    found = pins(path).get(canonical(name))
    if found is None:
        raise LockError(f"{path} locks no single version of {name}")
    return found


def canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")
