"""Format detection: magic bytes first, then text signatures, then the file name's extension.

:func:`sniff_kind` names either a table format (``csv``, ``parquet``, ...) or a container
(``gz``, ``bz2``, ``xz``, ``zst``, ``zip``, ``tar``) from a file's first bytes and its name,
so it also works on bytes peeked from inside a compressed stream.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from mlmesh_acquire.formats._text import decode_sample, detect_encoding

#: Bytes :func:`sniff_kind` wants to see (tar's signature sits at offset 257).
HEAD_BYTES = 64 * 1024

PARQUET_MAGIC = b"PAR1"
ARROW_FILE_MAGIC = b"ARROW1"
ARROW_STREAM_MAGIC = b"\xff\xff\xff\xff"
FEATHER_V1_MAGIC = b"FEA1"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")

#: Single-file compressions, by magic bytes.
COMPRESSION_MAGICS = {
    "gz": b"\x1f\x8b",
    "bz2": b"BZh",
    "xz": b"\xfd7zXZ\x00",
    "zst": b"\x28\xb5\x2f\xfd",
}
#: File name suffixes of each compression (stripped to name the inner file).
COMPRESSION_SUFFIXES = {
    "gz": (".gz", ".gzip", ".tgz"),
    "bz2": (".bz2", ".tbz2", ".tbz"),
    "xz": (".xz", ".txz"),
    "zst": (".zst", ".zstd", ".tzst"),
}
_TAR_SHORTHANDS = (".tgz", ".tbz2", ".tbz", ".txz", ".tzst")
CONTAINERS = ("gz", "bz2", "xz", "zst", "zip", "tar")

#: Other binary formats worth naming in an error, by their first bytes.
KNOWN_BINARY = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"%PDF": "a PDF document",
    b"SQLite format 3": "an SQLite database",
    b"7z\xbc\xaf\x27\x1c": "a 7-Zip archive (not supported: repack it as zip or tar.gz)",
    b"Rar!": "a RAR archive (not supported: repack it as zip or tar.gz)",
    b"\x7fELF": "an executable program",
    b"MZ": "a Windows executable",
}

#: Extensions that suggest a table format when the content itself does not decide.
EXTENSION_FORMATS = {
    ".csv": "csv", ".txt": "csv", ".data": "csv", ".dat": "csv",
    ".tsv": "tsv", ".tab": "tsv",
    ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl",
    ".parquet": "parquet", ".pq": "parquet", ".parq": "parquet",
    ".xlsx": "xlsx", ".xlsm": "xlsx", ".xls": "xls",
    ".feather": "feather", ".arrow": "feather", ".ipc": "feather", ".arrows": "arrow",
    ".arff": "arff",
    ".h5": "hdf5", ".hdf5": "hdf5", ".hdf": "hdf5", ".he5": "hdf5",
}


def sniff_kind(name: str, head: bytes) -> str:
    """A format or container name for a file called ``name`` starting with ``head``.

    Returns a table format, a container (see :data:`CONTAINERS`), ``xlsx-or-zip`` when the
    bytes are a ZIP whose members decide (see :func:`zip_is_workbook`) or ``unknown`` for a
    recognised non-table binary; everything else that is text defaults to ``csv``.
    """
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    if head.startswith(ARROW_FILE_MAGIC) or head.startswith(FEATHER_V1_MAGIC):
        return "feather"
    if head.startswith(ARROW_STREAM_MAGIC) and len(head) >= 8:
        return "arrow"
    if head.startswith(HDF5_MAGIC) or head[512:520] == HDF5_MAGIC:
        return "hdf5"
    if head.startswith(OLE_MAGIC):
        return "xls"
    if head.startswith(ZIP_MAGICS):
        return "xlsx-or-zip"
    for kind, magic in COMPRESSION_MAGICS.items():
        if head.startswith(magic):
            return kind
    if head[257:262] == b"ustar":
        return "tar"
    if any(head.startswith(magic) for magic in KNOWN_BINARY):
        return "unknown"
    text_kind = _sniff_text(head)
    if text_kind is not None:
        return text_kind
    return format_from_extension(name) or "csv"


def format_from_extension(name: str) -> str | None:
    """The table format the name's extension suggests, if any (compression suffixes skipped)."""
    return EXTENSION_FORMATS.get(Path(strip_compression_suffix(name)).suffix.lower())


def strip_compression_suffix(name: str) -> str:
    """``data.csv.gz`` -> ``data.csv``; ``data.tgz`` -> ``data.tar``."""
    lower = name.lower()
    for suffixes in COMPRESSION_SUFFIXES.values():
        for suffix in suffixes:
            if lower.endswith(suffix) and len(name) > len(suffix):
                inner = name[: -len(suffix)]
                return inner + ".tar" if suffix in _TAR_SHORTHANDS else inner
    return name


def describe_binary(head: bytes) -> str | None:
    """"a PDF document" and the like for recognised non-table files."""
    return next((what for magic, what in KNOWN_BINARY.items() if head.startswith(magic)), None)


def zip_is_workbook(path: Path) -> str | None:
    """``xlsx`` or ``ods`` when the ZIP at ``path`` is a spreadsheet, else ``None``."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if "xl/workbook.xml" in names or "xl/workbook.bin" in names:
                return "xlsx"
            if "mimetype" in names and b"opendocument.spreadsheet" in zf.read("mimetype"):
                return "ods"
    except (zipfile.BadZipFile, OSError, KeyError):
        return None
    return None


def is_parquet_folder(path: Path) -> bool:
    """Whether ``path`` is a folder holding Parquet files (a partitioned dataset)."""
    return path.is_dir() and any(
        p.is_file() and p.suffix.lower() in (".parquet", ".pq", ".parq") or
        p.is_file() and _is_hive_part(p, path)
        for p in path.rglob("*")
        if not any(part.startswith((".", "_")) for part in p.relative_to(path).parts)
    )


def _is_hive_part(file: Path, root: Path) -> bool:
    parts = file.relative_to(root).parts
    return len(parts) > 1 and all("=" in part for part in parts[:-1])


def _sniff_text(head: bytes) -> str | None:
    encoding = detect_encoding(head)
    text = decode_sample(head, encoding).lstrip()
    if not text:
        return None
    lowered = text[:4096].lower()
    if lowered.startswith("@relation") or (
        lowered.startswith("%") and "@relation" in text[:65536].lower()
        and "@attribute" in text[:65536].lower()
    ):
        return "arff"
    if text.startswith("["):
        return "json"
    if text.startswith("{"):
        lines = [line for line in text.splitlines() if line.strip()]
        try:
            first = json.loads(lines[0])
        except ValueError:
            return "json"
        if isinstance(first, dict) and len(lines) > 1 and lines[1].lstrip().startswith("{"):
            return "jsonl"
        return "json"
    return None
