"""The bucket's ``models/`` prefix as a mirror of the model cache folder.

It mirrors the cache folder's model files (``hf/hub``, ``torch``,
``nltk_data``). ``models/manifest.json`` holds the size and SHA-256 of every
file and the symlinks of the hub layout; a file is used only when its bytes
match the manifest. Every local write goes to a temp name in the same folder
and is renamed into place, so workers sharing a volume never see each other's
half-written files. Imports no torch.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Optional

from s3_utils import Storage
from settings import Settings
from worker.core import keys
from worker.core.errors import WorkerError

log = logging.getLogger(__name__)

GB = 1e9
MB = 1024 * 1024
MODELS_PREFIX = keys.MODELS
MANIFEST_KEY = keys.MODELS_MANIFEST
SYNC_DIRS = ("hf/hub", "torch", "nltk_data", "alignment")  # alignment: whisperx_backend's aligners
# Files this worker found corrupted in the bucket: its upload replaces them.
REJECTED_FILE = ".model-sync-rejected.json"
SKIP_SUFFIXES = (".incomplete", ".lock", ".tmp", ".part")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(MB), b""):
            digest.update(block)
    return digest.hexdigest()


def _inside(root: Path, relative: str) -> Optional[Path]:
    """root/relative when it stays inside root (manifest paths are untrusted).

    The last component is not resolved: it may be a hub symlink to replace.
    """
    root = root.resolve()
    lexical = Path(os.path.normpath(root / relative))
    path = lexical.parent.resolve() / lexical.name
    return path if root in path.parents else None


def _read_manifest(storage: Storage) -> dict:
    manifest = storage.get_json(MANIFEST_KEY) or {}
    return {"version": 1, "files": dict(manifest.get("files") or {}),
            "links": dict(manifest.get("links") or {})}


def sync_models_down(settings: Settings, storage: Storage, cache_dir: Path) -> str:
    """Fetch the manifest's files that are absent or differ here; verify each."""
    if not settings.enable_s3_model_cache:
        return "disabled"
    try:
        manifest = _read_manifest(storage)
        counts, size, rejected = Counter(), 0, []
        for relative, entry in sorted(manifest["files"].items()):
            outcome = _fetch(storage, Path(cache_dir), relative, entry)
            counts[outcome] += 1
            size += entry.get("size", 0) if outcome == "downloaded" else 0
            rejected += [relative] if outcome == "rejected" else []
        _restore_links(Path(cache_dir), manifest["links"])
        _write_json_atomic(Path(cache_dir) / REJECTED_FILE, rejected)
    except (WorkerError, OSError, ValueError) as exc:
        log.warning("model cache: sync from the bucket failed: %s", exc)
        return f"failed: {exc}"
    return _summary(counts, size)


def _summary(counts: Counter, size: int) -> str:
    text = (f"downloaded {counts['downloaded']} files ({size / GB:.1f} GB), "
            f"{counts['present']} already present")
    if counts["rejected"]:
        text += f", {counts['rejected']} rejected (size or checksum mismatch)"
    if counts["absent"]:
        text += f", {counts['absent']} missing from the bucket"
    return text


def _fetch(storage: Storage, cache_dir: Path, relative: str, entry: dict) -> str:
    """present | downloaded | rejected | absent."""
    path = _inside(cache_dir, relative)
    size, expected = entry.get("size"), entry.get("sha256")
    if path is None or not isinstance(size, int) or not expected:
        log.warning("model cache: manifest entry %r is unusable; skipped", relative)
        return "rejected"
    if path.is_file() and path.stat().st_size == size and sha256_file(path) == expected:
        return "present"
    info = storage.head(keys.model_file(relative))
    if info is None:
        log.warning("model cache: %s is in the manifest but not in the bucket", relative)
        return "absent"
    if info.size != size:
        log.warning("model cache: %s is %d bytes in the bucket, the manifest says %d; "
                    "not used", relative, info.size, size)
        return "rejected"
    return _download_verified(storage, path, relative, expected)


def _download_verified(storage: Storage, path: Path, relative: str, expected: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.parent / f".tmp-{path.name}-{uuid.uuid4().hex[:8]}"
    try:
        if not storage.download_file(keys.model_file(relative), temp):
            return "absent"
        if sha256_file(temp) != expected:
            log.warning("model cache: %s does not match its SHA-256 in the manifest "
                        "(truncated or tampered); not used", relative)
            return "rejected"
        os.replace(temp, path)
        return "downloaded"
    finally:
        temp.unlink(missing_ok=True)


def _restore_links(cache_dir: Path, links: dict) -> None:
    for relative, target in sorted(links.items()):
        link = _inside(cache_dir, relative)
        if link is None or not isinstance(target, str) or \
                _inside(cache_dir, os.path.join(os.path.dirname(relative), target)) is None:
            log.warning("model cache: link %r -> %r leaves the cache; skipped", relative, target)
            continue
        if link.is_symlink() and os.readlink(link) == target:
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        temp = link.parent / f".tmp-{link.name}-{uuid.uuid4().hex[:8]}"
        os.symlink(target, temp)
        os.replace(temp, link)


def _write_json_atomic(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.parent / f".tmp-{path.name}-{uuid.uuid4().hex[:8]}"
    try:
        temp.write_text(json.dumps(value))
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def _skipped(name: str) -> bool:
    return name.startswith(".") or name.endswith(SKIP_SUFFIXES)


def scan_cache(cache_dir: Path) -> tuple:
    """(files {relative: path}, links {relative: target}) of the synced folders."""
    files, links = {}, {}
    cache_dir = Path(cache_dir)
    for sub in SYNC_DIRS:
        for folder, dirs, names in os.walk(cache_dir / sub):
            dirs[:] = sorted(d for d in dirs if not _skipped(d))
            for name in sorted(n for n in names if not _skipped(n)):
                path = Path(folder) / name
                relative = path.relative_to(cache_dir).as_posix()
                if path.is_symlink():
                    target = os.readlink(path)
                    if _inside(cache_dir, os.path.join(os.path.dirname(relative), target)):
                        links[relative] = target
                elif path.is_file():
                    files[relative] = path
    return files, links


def upload_models(settings: Settings, storage: Storage, cache_dir: Path) -> str:
    """Upload the files the bucket lacks (or holds corrupted), then the manifest."""
    if not settings.enable_s3_model_cache:
        return "disabled"
    cache_dir = Path(cache_dir)
    manifest = _read_manifest(storage)
    in_bucket = {info.key[len(MODELS_PREFIX):]: info.size
                 for info in storage.list(MODELS_PREFIX)}
    redo = set(_read_rejected(cache_dir))
    files, links = scan_cache(cache_dir)
    added = {}
    for relative, path in files.items():
        size = path.stat().st_size
        entry = manifest["files"].get(relative) or {}
        if relative not in redo and in_bucket.get(relative) == size == entry.get("size"):
            continue
        digest = sha256_file(path)
        storage.put_file(keys.model_file(relative), path)
        added[relative] = {"size": size, "sha256": digest}
    new_links = {k: v for k, v in links.items() if manifest["links"].get(k) != v}
    if added or new_links:
        latest = _read_manifest(storage)   # merge what other workers wrote meanwhile
        latest["files"].update(added)
        latest["links"].update(new_links)
        storage.put_json(MANIFEST_KEY, latest)
    _write_json_atomic(cache_dir / REJECTED_FILE, sorted(redo - set(added)))
    return (f"uploaded {len(added)} files "
            f"({sum(e['size'] for e in added.values()) / GB:.1f} GB), {len(new_links)} links")


def _read_rejected(cache_dir: Path) -> list:
    try:
        return list(json.loads((cache_dir / REJECTED_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return []


def upload_missing_models(settings: Settings, storage: Storage,
                          cache_dir: Path) -> threading.Thread:
    """upload_models in a daemon thread, so no job waits for it; returns it started."""
    def run() -> None:
        try:
            log.info("model cache: %s", upload_models(settings, storage, cache_dir))
        except Exception:  # a background upload must never take the worker down
            log.exception("model cache: upload to the bucket failed")

    thread = threading.Thread(target=run, name="model-cache-upload", daemon=True)
    thread.start()
    return thread
