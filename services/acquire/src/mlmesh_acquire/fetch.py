"""Fetch a dataset from a URI onto local disk and turn it into Parquet.

:func:`acquire` is the entry point: :func:`fetch_source` brings the source in through the
:class:`~mlmesh_acquire.sources.Source` registered for its scheme (``file``, ``http(s)``,
``s3``, ``kaggle``, ``hf``, ``openml``, ``uci``), checks the expected sha256, records the
source in ``source.json`` (no credentials), and :func:`mlmesh_acquire.tables.to_parquet`
converts it.

Errors a retry cannot fix are ``ValueError`` subclasses (see
:mod:`mlmesh_acquire.source_errors`); transient ones are :class:`TransientSourceError`.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mlmesh_acquire.archives import ArchiveLimits
from mlmesh_acquire.safety import FetchLimits, NetworkPolicy, redact_url
from mlmesh_acquire.source_errors import (
    ChecksumMismatchError,
    MissingCredentialsError,
    RedirectLoopError,
    SourceError,
    SourceNotFoundError,
    SourceTooLargeError,
    TransientSourceError,
    UnsafeSourceError,
    UnsupportedSourceError,
)
from mlmesh_acquire.sources import (
    FetchContext,
    FetchedFile,
    ProgressCallback,
    source_for,
    supported_schemes,
)
from mlmesh_acquire.tables import TableInfo, to_parquet
from mlmesh_common.artifacts import sha256_file

__all__ = [
    "SOURCE_RECORD",
    "SUPPORTED_SCHEMES",
    "AcquiredTable",
    "ChecksumMismatchError",
    "FetchedFile",
    "MissingCredentialsError",
    "ProgressCallback",
    "RedirectLoopError",
    "SourceError",
    "SourceNotFoundError",
    "SourceTooLargeError",
    "TransientSourceError",
    "UnsafeSourceError",
    "UnsupportedSourceError",
    "acquire",
    "fetch_source",
    "sha256_file",
    "write_source_record",
]

#: URI schemes :func:`fetch_source` understands (plus plain absolute paths).
SUPPORTED_SCHEMES = supported_schemes()
#: The file, next to ``dataset.parquet``, that describes where the data came from.
SOURCE_RECORD = "source.json"


@dataclass(frozen=True)
class AcquiredTable:
    """A source fetched and converted to Parquet by :func:`acquire`."""

    parquet_path: Path
    parquet_sha256: str
    source_path: Path
    source_sha256: str
    source_bytes: int
    #: The source's format as the conversion saw it (``csv``, ``parquet``, ...).
    format: str
    n_rows: int
    n_columns: int
    columns: list[str] = field(default_factory=list)
    #: The target column the source itself names (OpenML, UCI), if any.
    suggested_target: str | None = None
    #: What ``source.json`` records about the source (no credentials).
    source_metadata: Mapping[str, Any] = field(default_factory=dict)
    #: The archive member converted, if the source was an archive.
    member: str | None = None
    #: What the conversion thought worth saying (a sheet chosen, rows skipped, ...).
    warnings: list[str] = field(default_factory=list)


def fetch_source(
    uri: str,
    dest_dir: Path,
    *,
    expected_sha256: str | None = None,
    progress: ProgressCallback | None = None,
    options: Mapping[str, str] | None = None,
    policy: NetworkPolicy | None = None,
    limits: FetchLimits | None = None,
    env: Mapping[str, str] | None = None,
) -> FetchedFile:
    """Bring ``uri`` into ``dest_dir`` and return where it landed with its sha256.

    ``progress(bytes_done, total_or_None)`` is called as bytes arrive. Files are written
    under a ``.part`` name and renamed when complete, so a reader never sees half a file.
    ``policy`` is the SSRF guard (default: public addresses only), ``limits`` the size,
    time and retry bounds, ``options`` the experiment's ``source_options``, ``env`` where
    credentials and endpoint overrides are read (default ``os.environ``).

    Raises UnsupportedSourceError, SourceNotFoundError, MissingCredentialsError,
    UnsafeSourceError, ChecksumMismatchError, SourceTooLargeError (permanent) and
    TransientSourceError (transient).
    """
    expected = _normalise_digest(expected_sha256)
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    source = source_for(uri)
    ctx = FetchContext(dest_dir=dest_dir, options=dict(options or {}),
                       policy=policy or NetworkPolicy(), limits=limits or FetchLimits(),
                       progress=progress, **({"env": env} if env is not None else {}))
    fetched = source.fetch(uri, ctx)
    if expected is not None and fetched.sha256 != expected:
        if fetched.path.is_dir():
            shutil.rmtree(fetched.path, ignore_errors=True)
        else:
            fetched.path.unlink(missing_ok=True)
        raise ChecksumMismatchError(
            f"sha256 of {source.describe(uri)} is {fetched.sha256} but {expected} was "
            "expected; the source changed or the transfer was corrupted, so check the source "
            "or update the expected checksum",
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
    options: Mapping[str, str] | None = None,
    policy: NetworkPolicy | None = None,
    limits: FetchLimits | None = None,
    env: Mapping[str, str] | None = None,
    archive_limits: ArchiveLimits | None = None,
    chunk_bytes: int | None = None,
) -> AcquiredTable:
    """Fetch ``uri`` into ``work_dir/source/``, write ``work_dir/dataset.parquet`` and
    record both in ``work_dir/source.json``.

    Combines :func:`fetch_source`, :func:`mlmesh_acquire.tables.to_parquet` (which reads
    ``options``, ``archive_limits`` and ``chunk_bytes``) and :func:`write_source_record`;
    raises their errors unchanged.
    """
    work_dir = Path(work_dir)
    fetched = fetch_source(uri, work_dir / "source", expected_sha256=expected_sha256,
                           progress=progress, options=options, policy=policy, limits=limits,
                           env=env)
    parquet_path = work_dir / "dataset.parquet"
    info: TableInfo = to_parquet(fetched.path, parquet_path, options=options,
                                 limits=archive_limits, chunk_bytes=chunk_bytes)
    write_source_record(work_dir / SOURCE_RECORD, uri, fetched, work_dir, table=info)
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
        suggested_target=fetched.suggested_target,
        source_metadata=dict(fetched.metadata),
        member=info.member,
        warnings=list(info.warnings),
    )


def write_source_record(path: Path, uri: str, fetched: FetchedFile,
                        relative_to: Path | None = None, *,
                        table: TableInfo | None = None) -> dict[str, Any]:
    """Write ``source.json``: where the data came from, what arrived, the suggested target
    and, given ``table``, what the conversion made of it.

    URLs in it are redacted; credentials are never part of a source's metadata.
    """
    try:
        shown = fetched.path.relative_to(relative_to).as_posix() if relative_to else None
    except ValueError:
        shown = None
    record: dict[str, Any] = {
        "uri": redact_url(uri),
        "scheme": urlsplit(uri).scheme.lower() or "file",
        "fetched_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "path": shown or fetched.path.name,
        "sha256": fetched.sha256,
        "bytes": fetched.size_bytes,
        "format": fetched.format,
        "media_type": fetched.media_type,
        "declared_media_type": fetched.declared_media_type,
        "suggested_target": fetched.suggested_target,
        "source": dict(fetched.metadata),
    }
    if table is not None:
        record["table"] = {"format": table.format, "member": table.member,
                           "n_rows": table.n_rows, "n_columns": table.n_columns,
                           "warnings": list(table.warnings)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n",
                    encoding="utf-8")
    return record


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
