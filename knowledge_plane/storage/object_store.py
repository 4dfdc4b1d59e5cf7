"""Object stores behind one interface: a local directory (the embedded default) and MinIO/S3.

The local store lays objects out as ``<root>/<bucket>/<key>`` and derives ETags and
LastModified from the files, so sensors and uploads behave the same on a laptop and on a bucket.
Calls to S3 are retried on transient failures (knowledge_plane.storage.retries); every one is
idempotent (a put writes the same bytes under the same key, a delete of a gone key succeeds).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from knowledge_plane.storage.retries import RetryPolicy, s3_transient

LOCAL_METADATA_SUFFIX = ".s3meta.json"  # local stand-in for S3 user metadata, never listed as an object


class ObjectMissing(KeyError):
    """The object was listed but is gone (deleted between listing and reading)."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str
    last_modified: dt.datetime
    metadata: dict[str, str] = field(default_factory=dict)


class ObjectStore(ABC):
    bucket: str

    @abstractmethod
    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Objects under a prefix, in key order, without user metadata (as S3's ListObjectsV2)."""

    @abstractmethod
    def head(self, key: str) -> ObjectInfo:
        """One object's info with its user metadata; raises ObjectMissing."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """The object's bytes; raises ObjectMissing."""

    @abstractmethod
    def put(self, key: str, data: bytes, metadata: dict[str, str] | None = None) -> ObjectInfo: ...

    @abstractmethod
    def delete(self, key: str) -> None: ...

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


class LocalObjectStore(ObjectStore):
    def __init__(self, root: Path, bucket: str):
        self.root = root / bucket
        self.bucket = bucket

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"object key {key!r} escapes the bucket")
        return path

    def _info(self, key: str, path: Path, with_metadata: bool) -> ObjectInfo:
        stat = path.stat()
        # A weak ETag from size and mtime: listing never reads file contents (10k objects per tick).
        etag = f"{stat.st_size:x}-{stat.st_mtime_ns:x}"
        meta_path = path.with_name(path.name + LOCAL_METADATA_SUFFIX)
        metadata = json.loads(meta_path.read_text()) if with_metadata and meta_path.is_file() else {}
        modified = dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC)
        return ObjectInfo(key, stat.st_size, etag, modified, metadata)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        base = self.root / prefix
        start = base if base.is_dir() else base.parent
        if not start.is_dir():
            return
        for path in sorted(p for p in start.rglob("*") if p.is_file()):
            key = path.relative_to(self.root).as_posix()
            if key.startswith(prefix) and not key.endswith(LOCAL_METADATA_SUFFIX):
                yield self._info(key, path, with_metadata=False)

    def head(self, key: str) -> ObjectInfo:
        path = self._path(key)
        if not path.is_file():
            raise ObjectMissing(key)
        return self._info(key, path, with_metadata=True)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise ObjectMissing(key) from exc

    def put(self, key: str, data: bytes, metadata: dict[str, str] | None = None) -> ObjectInfo:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        meta_path = path.with_name(path.name + LOCAL_METADATA_SUFFIX)
        if metadata:
            meta_path.write_text(json.dumps(metadata))
        elif meta_path.exists():
            meta_path.unlink()
        return self.head(key)

    def delete(self, key: str) -> None:
        for path in (self._path(key), self._path(key + LOCAL_METADATA_SUFFIX)):
            path.unlink(missing_ok=True)

    def uri(self, key: str) -> str:
        return f"local://{self.bucket}/{key}"


class S3ObjectStore(ObjectStore):
    """MinIO or S3 through a boto3 client (``s3_client``)."""

    def __init__(self, client: Any, bucket: str, retry: RetryPolicy | None = None):
        self.client = client
        self.bucket = bucket
        self.retry = retry or RetryPolicy()

    def _call(self, operation: str, key: str, **kwargs: Any) -> Any:
        """``client.<operation>(Bucket=…, **kwargs)``, retried on transient failures."""
        what = f"s3 {operation} s3://{self.bucket}/{key}"
        return self.retry.call(what, s3_transient, getattr(self.client, operation), Bucket=self.bucket, **kwargs)

    @staticmethod
    def _info(key: str, size: int, etag: str, modified: dt.datetime, metadata: dict | None = None) -> ObjectInfo:
        return ObjectInfo(key, size, etag.strip('"'), modified.astimezone(dt.UTC), dict(metadata or {}))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        # Page by page by hand rather than with a paginator, so a failed page is retried on its own.
        token: dict[str, str] = {}
        while True:
            page = self._call("list_objects_v2", prefix, Prefix=prefix, **token)
            for obj in page.get("Contents", []):
                yield self._info(obj["Key"], obj["Size"], obj["ETag"], obj["LastModified"])
            if not page.get("IsTruncated"):
                return
            token = {"ContinuationToken": page["NextContinuationToken"]}

    def _missing(self, exc: Exception) -> bool:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        return code in ("404", "NoSuchKey", "NotFound")

    def head(self, key: str) -> ObjectInfo:
        try:
            r = self._call("head_object", key, Key=key)
        except Exception as exc:
            if self._missing(exc):
                raise ObjectMissing(key) from exc
            raise
        return self._info(key, r["ContentLength"], r["ETag"], r["LastModified"], r.get("Metadata"))

    def get(self, key: str) -> bytes:
        try:
            # The body is read inside the retried call: a connection dropped mid-body is retried too.
            return self._call_read(key)
        except Exception as exc:
            if self._missing(exc):
                raise ObjectMissing(key) from exc
            raise

    def put(self, key: str, data: bytes, metadata: dict[str, str] | None = None) -> ObjectInfo:
        self._call("put_object", key, Key=key, Body=data, Metadata=metadata or {})
        return self.head(key)

    def delete(self, key: str) -> None:
        self._call("delete_object", key, Key=key)

    def _call_read(self, key: str) -> bytes:
        def read() -> bytes:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

        return self.retry.call(f"s3 get_object s3://{self.bucket}/{key}", s3_transient, read)

    def ensure_bucket(self) -> None:
        try:
            self._call("head_bucket", "")
        except Exception as exc:
            if s3_transient(exc):  # still unreachable after the retries: creating would fail too
                raise
            self._call("create_bucket", "")


def s3_client(endpoint_url: str | None, region: str | None = None, access_key_id: str | None = None,
              secret_access_key: str | None = None) -> Any:
    """A boto3 client; credentials not given are boto3's usual ones (AWS variables, instance role).

    botocore's own retries are off: S3ObjectStore retries with the project's policy, and two layers
    would multiply the attempts."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"total_max_attempts": 1}, connect_timeout=10, read_timeout=60)
    return boto3.client("s3", endpoint_url=endpoint_url, region_name=region or "us-east-1", config=config,
                        aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key)


def open_object_store(settings: Any) -> ObjectStore:
    """The store of the settings' ``object_store`` section (a ``knowledge_plane.settings.Settings``)."""
    section = settings.object_store
    if section.kind == "s3":
        secret = section.secret_access_key.get_secret_value() if section.secret_access_key else None
        return S3ObjectStore(s3_client(section.endpoint_url, section.region, section.access_key_id, secret),
                             section.bucket, retry=settings.retries.policy())
    return LocalObjectStore(settings.paths.objects_dir, section.bucket)
