"""``file://`` URIs and plain absolute paths: a local file, or a folder (partitioned table)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from mlmesh_acquire.source_errors import SourceNotFoundError, UnsupportedSourceError
from mlmesh_acquire.sources._base import (
    CHUNK_BYTES,
    FOLDER_FORMAT,
    FetchContext,
    FetchedFile,
    PartialFile,
    Source,
    folder_digest,
    safe_name,
)
from mlmesh_acquire.sources._registry import register_source


@register_source
class FileSource(Source):
    """A file or folder on a local (or mounted) file system.

    A folder is copied file by file (regular files only; symbolic links are skipped so
    nothing outside the folder is read) and its sha256 is that of its sorted
    ``relative path NUL sha256`` lines.
    """

    schemes = ("file",)

    def dependency(self, uri: str) -> str:
        return "local-files"

    def fetch(self, uri: str, ctx: FetchContext) -> FetchedFile:
        source = local_path(uri)
        if not source.exists():
            raise SourceNotFoundError(f"no file at {source}; check the path and that it is "
                                      "mounted")
        if source.is_dir():
            return self._fetch_folder(source, ctx)
        if not source.is_file():
            raise SourceNotFoundError(f"{source} is not a regular file; point at the data file")
        fetched = _copy_file(source, ctx.dest_dir / safe_name(source.name), ctx, str(source))
        return _with_meta(fetched, source)

    def _fetch_folder(self, source: Path, ctx: FetchContext) -> FetchedFile:
        files: list[tuple[Path, str]] = []
        for root, dirs, names in os.walk(source, followlinks=False):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(names):
                path = Path(root) / name
                if name.startswith(".") or path.is_symlink() or not path.is_file():
                    continue
                files.append((path, path.relative_to(source).as_posix()))
        if not files:
            raise SourceNotFoundError(f"folder {source} holds no files; point at the data")
        total = sum(path.stat().st_size for path, _ in files)
        ctx.limits.check_size(total, f"folder {source}")
        target = ctx.dest_dir / safe_name(source.name, default="folder")
        if target.exists():
            shutil.rmtree(target)
        entries: list[tuple[str, str]] = []
        done = 0
        for path, rel in files:
            fetched = _copy_file(path, target / rel, ctx.after(done), str(path))
            entries.append((rel, fetched.sha256))
            done += fetched.size_bytes
        ctx.report(done, total)
        folder = FetchedFile(path=target, sha256=folder_digest(entries), size_bytes=done,
                             format=FOLDER_FORMAT, media_type="inode/directory")
        return _with_meta(folder, source, n_files=len(entries))


def local_path(uri: str) -> Path:
    """The local path a ``file://`` URI or plain absolute path names."""
    parts = urlsplit(uri)
    if parts.scheme.lower() != "file":
        return Path(uri)
    if parts.netloc not in ("", "localhost"):
        raise UnsupportedSourceError(
            f"file URI {uri!r} names host {parts.netloc!r}; only local files can be read, "
            "so use file:///absolute/path")
    return Path(url2pathname(parts.path))


def _copy_file(source: Path, target: Path, ctx: FetchContext, label: str) -> FetchedFile:
    size = source.stat().st_size
    ctx.limits.check_size(size, label)
    with PartialFile(target, limits=ctx.limits, label=label, progress=ctx.progress) as part:
        part.total = size
        with open(source, "rb") as fh:
            for chunk in iter(lambda: fh.read(CHUNK_BYTES), b""):
                part.write(chunk)
        return part.finish()


def _with_meta(fetched: FetchedFile, source: Path, **extra: object) -> FetchedFile:
    from dataclasses import replace

    return replace(fetched, metadata={"source": "file", "path": str(source), **extra})
