"""Fetch a dataset file from a URI onto local disk and turn it into Parquet.

Supported sources: ``file://`` URIs and plain absolute paths, ``http://`` and ``https://``.
Bytes are streamed to disk with the sha256 computed on the way, so files larger than
memory are fine. Errors a retry cannot fix are ``ValueError`` subclasses; transient ones
(HTTP 5xx / 408 / 429, timeouts, refused connections) are :class:`TransientSourceError`
or ``httpx.TransportError`` and may be retried.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import httpx

from mlmesh_acquire.tables import TableInfo, detect_format, media_type_for, to_parquet

#: URI schemes :func:`fetch_source` understands (plus plain absolute paths).
SUPPORTED_SCHEMES = ("file", "http", "https")
#: Size of each read / write while streaming.
CHUNK_BYTES = 1024 * 1024
#: HTTP statuses in the 4xx range that are worth retrying.
RETRYABLE_CLIENT_STATUSES = frozenset({408, 425, 429})
USER_AGENT = "mlmesh-acquire/0.1"

ProgressCallback = Callable[[int, int | None], None]


class SourceError(ValueError):
    """A dataset source problem that retrying will not fix."""


class UnsupportedSourceError(SourceError):
    """The URI's scheme (or form) is not one acquire can fetch."""


class SourceNotFoundError(SourceError):
    """The source does not exist or refuses access (missing file, HTTP 4xx)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        #: The HTTP status, or ``None`` for a local file.
        self.status = status


class ChecksumMismatchError(SourceError):
    """The fetched bytes' sha256 differs from the expected digest."""

    def __init__(self, message: str, expected: str, actual: str) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual


class SourceTooLargeError(SourceError):
    """The source is larger than the allowed maximum."""


class TransientSourceError(Exception):
    """A failure worth retrying later (HTTP 5xx, 408, 425, 429)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class FetchedFile:
    """A source file fetched to local disk."""

    path: Path
    sha256: str
    size_bytes: int
    #: ``csv``, ``csv.gz``, ``parquet``, ``zip`` or ``unknown`` (from the first bytes, then
    #: the name).
    format: str
    #: IANA media type matching ``format``.
    media_type: str
    #: The media type the server announced (``Content-Type``), if any.
    declared_media_type: str | None = None


@dataclass(frozen=True)
class AcquiredTable:
    """A source fetched and converted to Parquet by :func:`acquire`."""

    parquet_path: Path
    parquet_sha256: str
    source_path: Path
    source_sha256: str
    source_bytes: int
    #: The source's format: ``csv``, ``csv.gz`` or ``parquet``.
    format: str
    n_rows: int
    n_columns: int
    columns: list[str] = field(default_factory=list)


def fetch_source(
    uri: str,
    dest_dir: Path,
    *,
    expected_sha256: str | None = None,
    timeout_s: float = 30.0,
    max_bytes: int = 2 * 1024**3,
    progress: ProgressCallback | None = None,
) -> FetchedFile:
    """Copy or download ``uri`` into ``dest_dir`` and return where it landed with its sha256.

    ``progress(bytes_done, total_or_None)`` is called as chunks arrive. The file is
    written under a ``.part`` name and renamed when complete and verified, so a reader
    never sees half a file. ``timeout_s`` bounds connecting and each read (not the whole
    transfer); ``max_bytes`` bounds the size.

    Raises UnsupportedSourceError, SourceNotFoundError, ChecksumMismatchError,
    SourceTooLargeError (permanent) and TransientSourceError / httpx.TransportError
    (transient).
    """
    expected = _normalise_digest(expected_sha256)
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme == "file" or (not scheme and os.path.isabs(uri)):
        local = Path(url2pathname(parts.path)) if scheme == "file" else Path(uri)
        if scheme == "file" and parts.netloc not in ("", "localhost"):
            raise UnsupportedSourceError(
                f"file URI {uri!r} names host {parts.netloc!r}; only local files can be read, "
                "so use file:///absolute/path"
            )
        fetched = _fetch_file(local, dest_dir, max_bytes=max_bytes, progress=progress)
    elif scheme in ("http", "https"):
        try:
            fetched = _fetch_http(
                uri, dest_dir, timeout_s=timeout_s, max_bytes=max_bytes, progress=progress
            )
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise UnsupportedSourceError(f"cannot fetch {uri!r}: {exc}; check the URL") from exc
        except httpx.TooManyRedirects as exc:
            raise SourceNotFoundError(
                f"GET {uri} redirects too many times ({exc}); the URL probably loops, so "
                "use the final download URL"
            ) from exc
    else:
        shown = f"scheme {scheme!r}" if scheme else "a relative path"
        raise UnsupportedSourceError(
            f"cannot fetch {uri!r}: {shown} is not supported; use one of "
            f"{', '.join(s + '://' for s in SUPPORTED_SCHEMES)} or an absolute file path"
        )
    if expected is not None and fetched.sha256 != expected:
        fetched.path.unlink(missing_ok=True)
        raise ChecksumMismatchError(
            f"sha256 of {uri} is {fetched.sha256} but {expected} was expected; the source "
            "changed or the transfer was corrupted, so check the source or update the "
            "expected checksum",
            expected=expected,
            actual=fetched.sha256,
        )
    return fetched


def acquire(
    uri: str,
    work_dir: Path,
    *,
    expected_sha256: str | None = None,
    progress: ProgressCallback | None = None,
    timeout_s: float = 30.0,
    max_bytes: int = 2 * 1024**3,
) -> AcquiredTable:
    """Fetch ``uri`` into ``work_dir/source/`` and write ``work_dir/dataset.parquet``.

    Combines :func:`fetch_source` and :func:`mlmesh_acquire.tables.to_parquet`; raises
    their errors unchanged.
    """
    work_dir = Path(work_dir)
    fetched = fetch_source(
        uri,
        work_dir / "source",
        expected_sha256=expected_sha256,
        timeout_s=timeout_s,
        max_bytes=max_bytes,
        progress=progress,
    )
    parquet_path = work_dir / "dataset.parquet"
    info: TableInfo = to_parquet(fetched.path, parquet_path)
    return AcquiredTable(
        parquet_path=parquet_path,
        parquet_sha256=sha256_file(parquet_path),
        source_path=fetched.path,
        source_sha256=fetched.sha256,
        source_bytes=fetched.size_bytes,
        format=info.format,
        n_rows=info.n_rows,
        n_columns=info.n_columns,
        columns=info.columns,
    )


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _normalise_digest(value: str | None) -> str | None:
    if value is None:
        return None
    digest = value.strip().lower()
    digest = digest.removeprefix("sha256:")
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise SourceError(
            f"expected_sha256 {value!r} is not a sha256 hex digest (64 hex characters); "
            "pass the digest as printed by sha256sum"
        )
    return digest


def _fetch_file(
    source: Path, dest_dir: Path, *, max_bytes: int, progress: ProgressCallback | None
) -> FetchedFile:
    if not source.exists():
        raise SourceNotFoundError(f"no file at {source}; check the path and that it is mounted")
    if not source.is_file():
        raise SourceNotFoundError(f"{source} is not a regular file; point at the data file")
    total = source.stat().st_size
    if total > max_bytes:
        raise SourceTooLargeError(
            f"{source} is {total} bytes, over the {max_bytes}-byte limit; raise the limit "
            "or give a smaller extract"
        )
    with open(source, "rb") as fh:
        chunks = iter(lambda: fh.read(CHUNK_BYTES), b"")
        return _write_stream(
            chunks, dest_dir / _safe_name(source.name), total, max_bytes, str(source), progress
        )


def _fetch_http(
    uri: str,
    dest_dir: Path,
    *,
    timeout_s: float,
    max_bytes: int,
    progress: ProgressCallback | None,
) -> FetchedFile:
    timeout = httpx.Timeout(timeout_s)
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    client = httpx.Client(timeout=timeout, follow_redirects=True, headers=headers)
    with client, client.stream("GET", uri) as response:
        status = response.status_code
        if status >= 500 or status in RETRYABLE_CLIENT_STATUSES:
            raise TransientSourceError(
                f"GET {uri} answered HTTP {status} {response.reason_phrase}; "
                "the host is failing or throttling, try again later",
                status=status,
            )
        if status >= 400:
            hint = (
                "the file does not exist there; check the URL"
                if status in (404, 410)
                else "access is refused; check the URL and any credentials it needs"
            )
            raise SourceNotFoundError(
                f"GET {uri} answered HTTP {status} {response.reason_phrase}: {hint}",
                status=status,
            )
        total = _content_length(response)
        if total is not None and total > max_bytes:
            raise SourceTooLargeError(
                f"{uri} is {total} bytes, over the {max_bytes}-byte limit; raise the "
                "limit or give a smaller extract"
            )
        name = _http_filename(response, uri)
        content_type = response.headers.get("content-type")
        fetched = _write_stream(
            response.iter_bytes(CHUNK_BYTES),
            dest_dir / name,
            total,
            max_bytes,
            uri,
            progress,
        )
    if total is not None and fetched.size_bytes != total:
        fetched.path.unlink(missing_ok=True)
        raise TransientSourceError(
            f"GET {uri} delivered {fetched.size_bytes} of {total} announced bytes; "
            "the connection broke, try again"
        )
    declared = content_type.split(";")[0].strip().lower() if content_type else None
    return FetchedFile(
        path=fetched.path,
        sha256=fetched.sha256,
        size_bytes=fetched.size_bytes,
        format=fetched.format,
        media_type=fetched.media_type,
        declared_media_type=declared,
    )


def _write_stream(
    chunks: Iterator[bytes],
    target: Path,
    total: int | None,
    max_bytes: int,
    label: str,
    progress: ProgressCallback | None,
) -> FetchedFile:
    digest = hashlib.sha256()
    done = 0
    head = b""
    tmp = target.with_name(target.name + ".part")
    try:
        with open(tmp, "wb") as out:
            for chunk in chunks:
                if not chunk:
                    continue
                done += len(chunk)
                if done > max_bytes:
                    raise SourceTooLargeError(
                        f"{label} exceeds the {max_bytes}-byte limit; raise the limit or "
                        "give a smaller extract"
                    )
                if len(head) < 16:
                    head += chunk[: 16 - len(head)]
                digest.update(chunk)
                out.write(chunk)
                if progress is not None:
                    progress(done, total)
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fmt = detect_format(target, head)
    return FetchedFile(
        path=target,
        sha256=digest.hexdigest(),
        size_bytes=done,
        format=fmt,
        media_type=media_type_for(fmt),
    )


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length")
    if value is None or response.headers.get("content-encoding", "identity") != "identity":
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _http_filename(response: httpx.Response, uri: str) -> str:
    disposition = response.headers.get("content-disposition")
    if disposition:
        msg = Message()
        msg["content-disposition"] = disposition
        name = msg.get_filename()
        if name:
            return _safe_name(name)
    # After redirects the final URL usually carries the real file name.
    path = unquote(urlsplit(str(response.url)).path) or unquote(urlsplit(uri).path)
    return _safe_name(path.rsplit("/", 1)[-1])


def _safe_name(name: str) -> str:
    """A file name without directory parts or characters that are awkward on disk."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return name[:200] or "download"
