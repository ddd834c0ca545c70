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

    @property
    def is_local(self) -> bool:
        return isinstance(self, LocalStorage)

    def spark_reachable(self) -> bool:
        """Whether Spark's own JVM readers and writers reach this storage."""
        return self.is_local


class LocalStorage(Storage):
    """Tables in a folder on the local disk (the embedded default)."""

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
