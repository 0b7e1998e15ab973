"""Storage: an S3 backend on boto3 and a local-directory backend, one interface.

Callers use logical keys (``voices/<name>/voice.json``); the backend adds the
optional ``S3_PREFIX``. Missing objects read as ``None``; every other failure
after retries is a ``storage_error``.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from settings import Settings
from worker.core import keys
from worker.core.errors import NOT_FOUND, STORAGE_ERROR, WorkerError

log = logging.getLogger(__name__)

MULTIPART_THRESHOLD = 16 * 1024 * 1024
MAX_ATTEMPTS = 4  # standard mode: 1 try + 3 retries with backoff, bounded
CONTENT_TYPES = {
    "wav": "audio/wav", "mp3": "audio/mpeg", "flac": "audio/flac",
    "ogg": "audio/ogg", "json": "application/json", "srt": "application/x-subrip",
    "vtt": "text/vtt", "csv": "text/csv", "ass": "text/x-ssa",
    "txt": "text/plain",
}


def content_type_for(key: str) -> str:
    return CONTENT_TYPES.get(key.rsplit(".", 1)[-1].lower(), "application/octet-stream")


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    last_modified: float  # unix seconds


class Storage:
    """The interface both backends keep."""

    kind = "abstract"

    def put_bytes(self, key: str, data: bytes, content_type: Optional[str] = None,
                  if_absent: bool = False) -> bool:
        """Store ``data``; with ``if_absent`` keep an existing object and return False."""
        raise NotImplementedError

    def put_file(self, key: str, path: Path, content_type: Optional[str] = None) -> None:
        raise NotImplementedError

    def get_bytes(self, key: str) -> Optional[bytes]:
        raise NotImplementedError

    def download_file(self, key: str, path: Path) -> bool:
        raise NotImplementedError

    def head(self, key: str) -> Optional[ObjectInfo]:
        raise NotImplementedError

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        raise NotImplementedError

    def delete(self, keys: list) -> None:
        raise NotImplementedError

    def presign(self, key: str, expires_in: int) -> str:
        raise NotImplementedError

    def honours_if_absent(self) -> bool:
        """Whether ``if_absent`` writes are atomic on this store (probed once per client).

        Some S3-compatible stores ignore ``IfNoneMatch`` and overwrite; callers
        that need "create once" use another scheme there (see voice_store).
        """
        known = getattr(self, "_if_absent_honoured", None)
        if known is None:
            known = self._probe_if_absent()
            self._if_absent_honoured = known
        return known

    def _probe_if_absent(self) -> bool:
        key = keys.if_absent_probe(uuid.uuid4().hex)
        try:
            first = self.put_bytes(key, b"1", "text/plain", if_absent=True)
            second = self.put_bytes(key, b"2", "text/plain", if_absent=True)
        except WorkerError as exc:
            # A store that refuses the header is one without conditional writes.
            log.warning("storage: conditional write probe failed (%s); not using them", exc)
            return False
        finally:
            try:
                self.delete([key])
            except WorkerError:
                log.warning("storage: could not remove the probe object %s", key)
        honoured = first and not second
        log.info("storage: conditional writes are %s", "honoured" if honoured else "ignored")
        return honoured

    # Shared helpers built on the primitives above.
    def put_json(self, key: str, value: dict, if_absent: bool = False) -> bool:
        data = json.dumps(value, indent=2, sort_keys=True).encode()
        return self.put_bytes(key, data, "application/json", if_absent=if_absent)

    def get_json(self, key: str) -> Optional[dict]:
        data = self.get_bytes(key)
        if data is None:
            return None
        try:
            return json.loads(data)
        except ValueError:
            raise WorkerError(STORAGE_ERROR, f"{key} is not valid JSON") from None

    def delete_prefix(self, prefix: str) -> int:
        keys = [info.key for info in self.list(prefix)]
        if keys:
            self.delete(keys)
        return len(keys)

    def require(self, key: str, what: str) -> ObjectInfo:
        info = self.head(key)
        if info is None:
            raise WorkerError(NOT_FOUND, f"{what} does not exist")
        return info


class LocalStorage(Storage):
    """A directory; writes go to a temp file and are renamed into place."""

    kind = "local"

    def __init__(self, root: Path):
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise WorkerError(STORAGE_ERROR, f"key {key!r} leaves the storage root")
        return path

    def _write(self, key: str, writer) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                writer(handle)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def honours_if_absent(self) -> bool:
        return True

    def put_bytes(self, key, data, content_type=None, if_absent=False):
        if if_absent:
            return self._create(key, data)
        self._write(key, lambda handle: handle.write(data))
        return True

    def _create(self, key: str, data: bytes) -> bool:
        """Write ``key`` only if absent; a reader never sees it half written."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            # link() fails if the name exists: atomic create of a complete file.
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:
            # A filesystem without hard links: O_EXCL still decides who creates it.
            try:
                with open(path, "xb") as handle:
                    handle.write(data)
            except FileExistsError:
                return False
        finally:
            os.unlink(tmp)
        return True

    def put_file(self, key, path, content_type=None):
        with open(path, "rb") as source:
            self._write(key, lambda handle: shutil.copyfileobj(source, handle))

    def get_bytes(self, key):
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    # Other workers share the folder: a file seen a moment ago may be gone
    # (replaced or deleted) by the time it is read; that reads as missing.
    def download_file(self, key, path):
        try:
            shutil.copyfile(self._path(key), path)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return False
        return True

    def head(self, key):
        path = self._path(key)
        try:
            stat = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not path.is_file():
            return None
        return ObjectInfo(key, stat.st_size, stat.st_mtime)

    def list(self, prefix):
        # S3 prefixes are plain string prefixes: walk the folder that holds them.
        if prefix.endswith("/") or "/" not in prefix:
            folder = prefix if prefix.endswith("/") else ""
        else:
            folder = prefix.rsplit("/", 1)[0]
        base = self._path(folder.rstrip("/")) if folder.strip("/") else self.root
        if not base.is_dir():
            return
        for path in sorted(base.rglob("*")):
            if path.is_file() and not path.name.startswith(".tmp-"):
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    try:
                        stat = path.stat()
                    except FileNotFoundError:
                        continue   # deleted since the walk saw it
                    yield ObjectInfo(key, stat.st_size, stat.st_mtime)

    def delete(self, keys):
        for key in keys:
            try:
                self._path(key).unlink()
            except FileNotFoundError:
                pass

    def presign(self, key, expires_in):
        return self._path(key).as_uri()


class S3Storage(Storage):
    """boto3 against AWS S3 or any S3-compatible endpoint (B2, MinIO, R2)."""

    kind = "s3"

    def __init__(self, settings: Settings):
        import boto3
        from boto3.s3.transfer import TransferConfig

        self.bucket = settings.s3_bucket
        self.prefix = f"{settings.s3_prefix}/" if settings.s3_prefix else ""
        self.client = boto3.client(
            "s3",
            endpoint_url=settings.aws_endpoint_url,
            region_name=settings.aws_region,
            aws_access_key_id=settings.aws_access_key_id,
            aws_secret_access_key=settings.aws_secret_access_key,
            config=_client_config(settings),
        )
        self.transfer = TransferConfig(multipart_threshold=MULTIPART_THRESHOLD,
                                       multipart_chunksize=MULTIPART_THRESHOLD)

    def _key(self, key: str) -> str:
        return self.prefix + key

    def _call(self, what: str, function, *args, **kwargs):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return function(*args, **kwargs)
        except ClientError as exc:
            # A missing bucket is a 404 too, but it is the operator's error.
            if _code(exc) in ("NoSuchKey", "NotFound", "404"):
                return _MISSING
            raise _storage_error(what, exc) from exc
        except (BotoCoreError, OSError) as exc:
            raise _storage_error(what, exc) from exc

    def put_bytes(self, key, data, content_type=None, if_absent=False):
        from botocore.exceptions import BotoCoreError, ClientError

        # IfNoneMatch makes "create once" atomic on the server (S3, MinIO, R2).
        extra = {"IfNoneMatch": "*"} if if_absent else {}
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data,
                                   ContentType=content_type or content_type_for(key),
                                   **extra)
        except ClientError as exc:
            if if_absent and _status(exc) in (409, 412):
                return False
            raise _storage_error(f"writing {key}", exc) from exc
        except (BotoCoreError, OSError) as exc:
            raise _storage_error(f"writing {key}", exc) from exc
        return True

    def put_file(self, key, path, content_type=None):
        extra = {"ContentType": content_type or content_type_for(key)}
        self._call(f"uploading {key}", self.client.upload_file, str(path), self.bucket,
                   self._key(key), ExtraArgs=extra, Config=self.transfer)

    def get_bytes(self, key):
        response = self._call(f"reading {key}", self.client.get_object,
                              Bucket=self.bucket, Key=self._key(key))
        if response is _MISSING:
            return None
        return self._call(f"reading {key}", response["Body"].read)

    def download_file(self, key, path):
        result = self._call(f"downloading {key}", self.client.download_file, self.bucket,
                            self._key(key), str(path), Config=self.transfer)
        return result is not _MISSING

    def head(self, key):
        response = self._call(f"checking {key}", self.client.head_object,
                              Bucket=self.bucket, Key=self._key(key))
        if response is _MISSING:
            return None
        return ObjectInfo(key, response["ContentLength"],
                          response["LastModified"].timestamp())

    def list(self, prefix):
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix))
        listed = self._call(f"listing {prefix}", list, pages)
        if listed is _MISSING:
            raise WorkerError(STORAGE_ERROR, f"listing {prefix} failed: the bucket does not exist")
        for page in listed:
            for item in page.get("Contents", []):
                yield ObjectInfo(item["Key"][len(self.prefix):], item["Size"],
                                 item["LastModified"].timestamp())

    def delete(self, keys):
        for start in range(0, len(keys), 1000):
            batch = [{"Key": self._key(key)} for key in keys[start:start + 1000]]
            self._call("deleting objects", self.client.delete_objects,
                       Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})

    def presign(self, key, expires_in):
        return self._call(f"signing {key}", self.client.generate_presigned_url,
                          "get_object", Params={"Bucket": self.bucket, "Key": self._key(key)},
                          ExpiresIn=expires_in)


_MISSING = object()


def _status(exc) -> Optional[int]:
    return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def _code(exc) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def _storage_error(what: str, exc: Exception) -> WorkerError:
    detail = _code(exc) if hasattr(exc, "response") else type(exc).__name__
    log.warning("storage: %s failed: %s", what, exc)
    return WorkerError(STORAGE_ERROR, f"{what} failed ({detail or 'error'}); "
                       "check the bucket, endpoint and credentials")


def _client_config(settings: Settings):
    from botocore.config import Config

    return Config(
        # Custom endpoints would otherwise get SigV2 presigned URLs, which B2,
        # R2 and recent MinIO refuse.
        signature_version="s3v4",
        s3={"addressing_style": settings.s3_addressing_style},
        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
        connect_timeout=10,
        read_timeout=60,
        # boto3 >= 1.36 adds CRC checksums to every request by default, which
        # several S3-compatible servers reject.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )


@functools.lru_cache(maxsize=8)
def _cached_storage(settings: Settings) -> Storage:
    if settings.uses_s3:
        return S3Storage(settings)
    return LocalStorage(settings.local_storage_dir)


def get_storage(settings: Settings) -> Storage:
    """The backend for these settings; clients are built once per settings value."""
    return _cached_storage(settings)
