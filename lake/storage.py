"""Where table files live: a local folder or an S3 API bucket, behind one small interface.

Each backend knows how to hand its location and credentials to the engines that
touch the files: delta-rs (``storage_options``), pyarrow (a ``FileSystem``) and
DuckDB (a secret). Nothing else in the project branches on local vs S3.
"""

from __future__ import annotations

import os
import shutil
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from lake.config import Settings
from lake.errors import StorageError


@dataclass(frozen=True)
class FileInfo:
    """One file below a prefix."""

    path: str
    """Path relative to the listed prefix, with ``/`` separators."""
    size: int
    mtime: float
    """Modification time, seconds since the epoch."""


class Storage(ABC):
    """A location that holds table folders."""

    root: str
    scheme: str
    """``file`` or ``s3``: the namespace of locations on this storage (lineage, URIs)."""

    @abstractmethod
    def uri(self, *parts: str) -> str:
        """The URI (local absolute path or ``s3://``) of a location below the root."""

    @abstractmethod
    def delta_options(self) -> dict[str, str]:
        """``storage_options`` for delta-rs (contains secrets: never log them)."""

    @abstractmethod
    def arrow_fs(self) -> pafs.FileSystem:
        """A pyarrow file system that reaches paths returned by :meth:`fs_path`."""

    @abstractmethod
    def fs_path(self, uri: str) -> str:
        """The path of ``uri`` inside :meth:`arrow_fs`."""

    @abstractmethod
    def fs_spec(self) -> tuple[str, dict[str, Any]]:
        """A picklable ``(kind, kwargs)`` from which executors rebuild :meth:`arrow_fs`
        (see :func:`filesystem_from_spec`; contains secrets: never log it)."""

    @abstractmethod
    def duckdb_s3(self) -> dict[str, Any] | None:
        """What DuckDB needs to reach this storage (region, key, secret, endpoint, ssl), or
        None when it reads the files directly (contains secrets: never log it)."""

    def location_uri(self, path: str) -> str:
        """The URI engines open for a path inside :meth:`arrow_fs` (inverse of :meth:`fs_path`)."""
        return path

    @abstractmethod
    def ensure_root(self) -> None:
        """Make sure the root can hold tables (create the folder, check the bucket)."""

    def list_files(self, uri: str) -> list[FileInfo]:
        """Every file below ``uri``, recursively (empty when it does not exist)."""
        fs, base = self.arrow_fs(), self.fs_path(uri).rstrip("/")
        try:
            infos = fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
        except OSError as exc:
            raise StorageError(f"cannot list {uri}: {exc}") from exc
        out = []
        for info in infos:
            if info.type == pafs.FileType.File:
                mtime = info.mtime.timestamp() if info.mtime else time.time()
                out.append(FileInfo(info.path[len(base) + 1 :], info.size or 0, mtime))
        return out

    def list_dirs(self, uri: str) -> list[str]:
        """Names of the folders directly below ``uri``."""
        fs, base = self.arrow_fs(), self.fs_path(uri).rstrip("/")
        try:
            infos = fs.get_file_info(pafs.FileSelector(base, recursive=False, allow_not_found=True))
        except OSError as exc:
            raise StorageError(f"cannot list {uri}: {exc}") from exc
        return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory)

    def delete_tree(self, uri: str) -> None:
        """Remove ``uri`` and everything below it (no error when absent)."""
        fs, path = self.arrow_fs(), self.fs_path(uri)
        if fs.get_file_info(path).type == pafs.FileType.NotFound:
            return
        fs.delete_dir(path)

    def delete_file(self, uri: str) -> None:
        """Remove one file."""
        self.arrow_fs().delete_file(self.fs_path(uri))

    def move(self, src: str, dst: str) -> None:
        """Move a file (a rename on local disks)."""
        self.arrow_fs().move(self.fs_path(src), self.fs_path(dst))

    def write_bytes(self, uri: str, data: bytes) -> None:
        """Write a small file whole (creating its folder)."""
        fs, path = self.arrow_fs(), self.fs_path(uri)
        try:
            fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
            with fs.open_output_stream(path) as out:
                out.write(data)
        except OSError as exc:
            raise StorageError(f"cannot write {uri}: {exc}") from exc

    def read_bytes(self, uri: str) -> bytes | None:
        """A small file's content, or None when it does not exist."""
        fs, path = self.arrow_fs(), self.fs_path(uri)
        try:
            with fs.open_input_stream(path) as fh:
                return bytes(fh.read())
        except FileNotFoundError:
            return None
        except OSError as exc:
            if fs.get_file_info(path).type == pafs.FileType.NotFound:
                return None
            raise StorageError(f"cannot read {uri}: {exc}") from exc

    @property
    def is_local(self) -> bool:
        return self.scheme == "file"

    def spark_reachable(self) -> bool:
        """Whether Spark's own JVM readers and writers reach this storage."""
        return self.is_local


class LocalStorage(Storage):
    """Tables in a folder on the local disk (the embedded default)."""

    scheme = "file"

    def __init__(self, root: str) -> None:
        self.root = str(Path(root).expanduser().resolve())

    def uri(self, *parts: str) -> str:
        return str(Path(self.root, *parts))

    def delta_options(self) -> dict[str, str]:
        return {}

    def arrow_fs(self) -> pafs.FileSystem:
        return pafs.LocalFileSystem()

    def fs_path(self, uri: str) -> str:
        return uri[len("file://") :] if uri.startswith("file://") else uri

    def fs_spec(self) -> tuple[str, dict[str, Any]]:
        return ("local", {})

    def duckdb_s3(self) -> dict[str, Any] | None:
        return None

    def ensure_root(self) -> None:
        try:
            os.makedirs(self.root, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"cannot create the lake root {self.root}: {exc.strerror}. "
                "Set LAKE_ROOT or 'root' in lake.toml to a writable folder."
            ) from exc

    def move(self, src: str, dst: str) -> None:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        os.replace(src, dst)

    def delete_tree(self, uri: str) -> None:
        shutil.rmtree(self.fs_path(uri), ignore_errors=True)


class S3Storage(Storage):
    """Tables under ``s3://bucket/prefix`` on any S3 API (MinIO, AWS, moto)."""

    scheme = "s3"

    def __init__(self, root: str, settings: Settings) -> None:
        self.root = "s3://" + root.split("://", 1)[1].rstrip("/")
        self.s3 = settings.s3
        self._fs: pafs.S3FileSystem | None = None

    @property
    def bucket(self) -> str:
        return self.root[len("s3://") :].split("/", 1)[0]

    def uri(self, *parts: str) -> str:
        return "/".join([self.root, *(p.strip("/") for p in parts)])

    def delta_options(self) -> dict[str, str]:
        opts = {"AWS_REGION": self.s3.region, "conditional_put": "etag"}
        if self.s3.endpoint:
            opts["AWS_ENDPOINT_URL"] = self.s3.endpoint
        if self.s3.access_key:
            opts["AWS_ACCESS_KEY_ID"] = self.s3.access_key
        if self.s3.secret_key:
            opts["AWS_SECRET_ACCESS_KEY"] = self.s3.secret_key.get_secret_value()
        if self.s3.http_allowed:
            opts["AWS_ALLOW_HTTP"] = "true"
        if self.s3.endpoint:
            opts["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] = "false"
        return opts

    def arrow_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``pyarrow.fs.S3FileSystem`` (secrets included)."""
        kwargs: dict[str, Any] = {"region": self.s3.region}
        if self.s3.endpoint:
            scheme, _, host = self.s3.endpoint.partition("://")
            kwargs.update(endpoint_override=host or scheme, scheme=scheme if host else "https")
        if self.s3.access_key:
            kwargs["access_key"] = self.s3.access_key
        if self.s3.secret_key:
            kwargs["secret_key"] = self.s3.secret_key.get_secret_value()
        return kwargs

    def arrow_fs(self) -> pafs.FileSystem:
        if self._fs is None:
            self._fs = pafs.S3FileSystem(**self.arrow_kwargs())
        return self._fs

    def fs_path(self, uri: str) -> str:
        return uri.split("://", 1)[1] if "://" in uri else uri

    def fs_spec(self) -> tuple[str, dict[str, Any]]:
        return ("s3", self.arrow_kwargs())

    def duckdb_s3(self) -> dict[str, Any] | None:
        scheme, _, host = (self.s3.endpoint or "").partition("://")
        return {"region": self.s3.region, "key_id": self.s3.access_key,
                "secret": self.s3.secret_key.get_secret_value() if self.s3.secret_key else None,
                "endpoint": host or None, "ssl": scheme != "http"}

    def location_uri(self, path: str) -> str:
        return "s3://" + path

    def ensure_root(self) -> None:
        fs = self.arrow_fs()
        try:
            info = fs.get_file_info(self.bucket)
        except OSError as exc:
            raise StorageError(
                f"cannot reach the S3 endpoint {self.s3.endpoint or 'AWS'} for {self.root}: {exc}. "
                "Check LAKE_S3_ENDPOINT and the credentials."
            ) from exc
        if info.type == pafs.FileType.NotFound:
            raise StorageError(
                f"bucket {self.bucket!r} does not exist on {self.s3.endpoint or 'AWS'}: create it "
                "(e.g. `mc mb`) or point LAKE_ROOT at an existing bucket"
            )


def storage_for(settings: Settings) -> Storage:
    """The storage backend for the settings' lake root."""
    if settings.is_s3:
        return S3Storage(settings.root_uri, settings)
    return LocalStorage(settings.root_uri)


def storage_reaching(location: str, lake_storage: Storage, settings: Settings) -> tuple[Storage, str]:
    """The storage that reaches ``location`` and its absolute URI.

    ``s3://...`` is on S3 (the lake's own connection when the lake is on S3), an absolute
    path on the local disk, and anything else is relative to the lake root.
    """
    if location.startswith(("s3://", "s3a://")):
        uri = "s3://" + location.split("://", 1)[1]
        return (lake_storage if lake_storage.scheme == "s3" else S3Storage(uri, settings)), uri
    if os.path.isabs(location):
        return (lake_storage if lake_storage.scheme == "file" else LocalStorage(os.path.dirname(location))), location
    return lake_storage, lake_storage.uri(location)


def filesystem_from_spec(kind: str, kwargs: dict[str, Any]) -> pafs.FileSystem:
    """Rebuild a file system from :meth:`Storage.fs_spec` (on an executor)."""
    if kind == "s3":
        return pafs.S3FileSystem(**kwargs)
    return pafs.LocalFileSystem()
