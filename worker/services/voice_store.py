"""Where a voice's objects live, and how an upload becomes visible whole.

Layouts, all read by ``find``:

- pointer (written now): ``voices/<name>/voice.json`` holds the metadata and
  the key of its audio, ``voices/<name>/uploads/<upload_id>/reference.wav``;
- direct (this worker before pointers): ``voices/<name>/reference.wav`` and a
  ``voice.json`` without ``reference``;
- flat (the earlier worker): ``voices/<name>.wav`` and ``voices/<name>.txt``.

An upload writes its audio under a fresh ``uploads/<id>/`` prefix, then points
the name at it with one write of ``voice.json``. Metadata and audio key travel
in one object, so a reader that reads ``voice.json`` first and then the audio
it names gets a pair from one upload. Audio under ``uploads/`` is never
rewritten; an overwrite deletes the audio it replaced, and a reader that finds
its audio gone reads ``voice.json`` again.

Without overwrite exactly one upload may win. Where the store honours
``IfNoneMatch`` (probed once per storage client) ``voice.json`` is created
with it. Elsewhere each upload writes a claim, lists the claims, and goes on
only if its claim is alone and no voice exists yet; the winner keeps its claim
until ``voice.json`` is written. On a store with read-after-write consistency
(S3 and the usual compatibles) two uploads cannot both win: the later of two
claim writes is followed by a listing that shows the other claim or, once
that claim is gone, by a check that finds the other upload's ``voice.json``.
Contenders that see each other back off and try again.

Objects no ``voice.json`` names (uploads that lost an overwrite race, or
died between writing audio and pointing at it) are removed by the next
upload of that name once they are ``IN_FLIGHT_S`` old.
"""
from __future__ import annotations

import logging
import random
import secrets
import time
from dataclasses import dataclass
from typing import Callable, Optional

from s3_utils import ObjectInfo, Storage
from worker.core import keys
from worker.core.errors import CONFLICT, WorkerError

log = logging.getLogger(__name__)

UPLOADS = "uploads"
CLAIMS = "claims"
AUDIO_NAME = "reference.wav"
READ_ATTEMPTS = 4
CLAIM_ATTEMPTS = 8
CLAIM_BACKOFF_S = (0.05, 0.4)   # times the attempt number
# An upload points at its audio within seconds of writing it; one that has not
# after this long is dead. It exceeds the clock skew S3 tolerates (15 min).
IN_FLIGHT_S = 1800.0


@dataclass(frozen=True)
class StoredVoice:
    name: str
    layout: str          # pointer | direct | flat
    audio_key: str
    meta: dict           # voice.json as stored ({} where there is none)

    @property
    def upload_id(self) -> Optional[str]:
        return self.meta.get("upload_id") if self.layout == "pointer" else None

    @property
    def transcript_key(self) -> str:
        """Where a job's transcript of exactly this audio is kept: beside it."""
        return self.audio_key[:-len(".wav")] + ".txt"


def meta_key(name: str) -> str:
    return keys.voice_meta(name)


def direct_keys(name: str) -> tuple:
    return keys.voice_reference(name), keys.voice_transcript(name)


def flat_keys(name: str) -> tuple:
    return keys.flat_voice(name)


def new_upload_id() -> str:
    # Sortable by time for whoever browses the bucket; random so that
    # concurrent uploads never share a prefix.
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(6)


def find(storage: Storage, name: str, fetch: Optional[Callable] = None) -> Optional[tuple]:
    """``(StoredVoice, fetch(audio_key))`` in whichever layout the voice is, else None.

    ``fetch`` is ``storage.head`` by default; ``storage.get_bytes`` reads the audio.
    """
    fetch = fetch or storage.head
    for _ in range(READ_ATTEMPTS):
        meta = storage.get_json(meta_key(name))
        if meta is None:
            return _find_unpointed(storage, name, fetch)
        key = _audio_key(name, meta)
        found = fetch(key)
        if found is not None:
            layout = "direct" if key == direct_keys(name)[0] else "pointer"
            return StoredVoice(name, layout, key, meta), found
        # The audio went after voice.json was read (overwritten or deleted): again.
    log.warning("voice %s: voice.json names audio that is not stored", name)
    return None


def _find_unpointed(storage: Storage, name: str, fetch: Callable) -> Optional[tuple]:
    # A direct-layout reference whose voice.json was never written still counts.
    for layout, key in (("direct", direct_keys(name)[0]), ("flat", flat_keys(name)[0])):
        found = fetch(key)
        if found is not None:
            return StoredVoice(name, layout, key, {}), found
    return None


def _audio_key(name: str, meta: dict) -> str:
    reference = meta.get("reference")
    if reference is None:
        return direct_keys(name)[0]
    parts = reference.split("/") if isinstance(reference, str) else []
    # Only keys of this voice's uploads: download must never hand out another key.
    if parts[:3] != ["voices", name, UPLOADS] or len(parts) != 5 or parts[4] != AUDIO_NAME \
            or parts[3] in ("", ".", ".."):
        log.warning("voice %s: voice.json names an unexpected key %r", name, reference)
        return direct_keys(name)[0]
    return reference


def publish(storage: Storage, name: str, audio: bytes, meta: dict,
            overwrite: bool) -> StoredVoice:
    """Store one upload's audio and metadata as voice ``name``, whole or not at all.

    Without ``overwrite`` an existing voice (any layout) is ``conflict``.
    """
    if not overwrite and find(storage, name) is not None:
        raise conflict_error(name)
    upload_id = new_upload_id()
    audio_key = keys.voice_upload_audio(name, upload_id)
    pointer = {**meta, "reference": audio_key, "upload_id": upload_id}
    storage.put_bytes(audio_key, audio, "audio/wav")
    try:
        if overwrite:
            replaced = _replace(storage, name, pointer)
        else:
            replaced = _create(storage, name, pointer)
    except BaseException:
        _abandon(storage, name, upload_id, audio_key)
        raise
    try:
        _collect(storage, name, keep=upload_id, drop=replaced)
    except WorkerError as exc:
        # The voice is stored; leftovers go with a later upload of the name.
        log.warning("voice %s: could not remove replaced objects (%s)", name, exc)
    return StoredVoice(name, "pointer", audio_key, pointer)


def _replace(storage: Storage, name: str, pointer: dict) -> set:
    """Point the name at this upload; the upload it replaced, to delete."""
    previous = storage.get_json(meta_key(name)) or {}
    storage.put_json(meta_key(name), pointer)
    replaced = previous.get("upload_id")
    return {replaced} if isinstance(replaced, str) else set()


def _create(storage: Storage, name: str, pointer: dict) -> set:
    if storage.honours_if_absent():
        if not storage.put_json(meta_key(name), pointer, if_absent=True):
            raise conflict_error(name)
        return set()
    claim = keys.voice_claim(name, pointer["upload_id"])
    for attempt in range(1, CLAIM_ATTEMPTS + 1):
        storage.put_bytes(claim, b"", "text/plain")
        try:
            if _claim_is_alone(storage, name, claim) and find(storage, name) is None:
                storage.put_json(meta_key(name), pointer)
                return set()
        finally:
            storage.delete([claim])
        if find(storage, name) is not None:
            raise conflict_error(name)
        time.sleep(random.uniform(*CLAIM_BACKOFF_S) * attempt)
    raise WorkerError(CONFLICT, f"voice {name} is being uploaded by other jobs at the same "
                      "time; try again, or pass overwrite: true to replace it")


def _claim_is_alone(storage: Storage, name: str, claim: str) -> bool:
    claims = {info.key: info for info in storage.list(keys.voice_claims(name))}
    mine = claims.pop(claim, None)
    if mine is None:
        # The listing does not show our own write yet: too stale to decide on.
        return False
    # Server times on both sides; a much older claim is an upload that died.
    return all(info.last_modified < mine.last_modified - IN_FLIGHT_S
               for info in claims.values())


def _abandon(storage: Storage, name: str, upload_id: str, audio_key: str) -> None:
    """Remove a failed upload's audio, unless its voice.json did land after all."""
    try:
        current = storage.get_json(meta_key(name)) or {}
        if current.get("upload_id") != upload_id:
            storage.delete([audio_key])
    except WorkerError as exc:
        log.warning("voice %s: could not remove failed upload %s (%s); a later upload "
                    "removes it", name, upload_id, exc)


def remove(storage: Storage, name: str) -> bool:
    """Delete voice ``name`` in any layout; False if there is none."""
    found = find(storage, name)
    if found is None:
        return False
    current = found[0].upload_id
    # voice.json first: from here on readers find no voice, never half of one.
    storage.delete([meta_key(name)])
    _collect(storage, name, keep=None, drop={current} if current else set())
    return True


def _collect(storage: Storage, name: str, keep: Optional[str], drop: set) -> None:
    """Delete what no voice.json names: replaced layouts, dropped and dead uploads."""
    now = time.time()
    garbage = [info.key for info in storage.list(keys.voice_prefix(name))
               if _is_garbage(info, name, keep, drop, now)]
    storage.delete(garbage + list(flat_keys(name)))


def _is_garbage(info: ObjectInfo, name: str, keep: Optional[str], drop: set,
                now: float) -> bool:
    parts = info.key[len(keys.voice_prefix(name)):].split("/")
    old = now - info.last_modified > IN_FLIGHT_S
    if info.key in direct_keys(name):
        return True
    if parts[0] == UPLOADS and len(parts) >= 3:
        return parts[1] != keep and (parts[1] in drop or old)
    if parts[0] == CLAIMS:
        return old
    return False


def conflict_error(name: str) -> WorkerError:
    return WorkerError(CONFLICT, f"voice {name} exists; pass overwrite: true to replace it")
