"""Unpack compressed files and archives, safely, down to the table inside.

Layers: single-file compression (gzip, bzip2, xz, zstd: found by magic bytes) and archives
(zip, tar; a ``.tar.gz`` is a gzip layer holding a tar). They may stack: a zip inside a tar.gz,
a ``.csv.gz`` inside a zip. Archives nest at most one level (an archive inside an archive);
at most :data:`MAX_COMPRESSION_LAYERS` compressions follow one another.

The main table of a multi-file archive, unless source option ``member`` names it:

1. Candidates are the files with a table extension (``.csv``, ``.tsv``, ``.json``,
   ``.jsonl``, ``.parquet``, ``.xlsx``, ``.xls``, ``.feather``, ``.arff``, ``.h5``, ...,
   also under ``.gz``/``.bz2``/``.xz``/``.zst``), plus each folder of Parquet parts (hive
   ``key=value`` sub-folders, or Spark ``part-*`` files), which counts as one table.
2. When there are none, files ending ``.txt``, ``.data`` or ``.dat`` (UCI style) are the
   candidates; when there are none of those either, nested archives are.
3. The largest candidate wins (uncompressed size, folders summed); a tie goes to the first
   path in alphabetical order. Hidden files (a path part starting with ``.``), macOS
   ``__MACOSX`` folders, ``~$`` Office lock files, links and devices are never candidates.

``member`` is a path inside the archive (``data/train.csv``), a file name that is unique in
it (``train.csv``), a Parquet folder, or, for a nested archive, the inner archive's path
followed by the member inside it (``inner.zip/train.csv``).

Safety: every member name is checked before anything is extracted, and an archive holding
an absolute path, a ``..`` component, or a symbolic/hard link pointing outside the
extraction folder is refused as a whole. Only the chosen member (or folder) is extracted,
by streaming it into a file the code names itself, so nothing else in the archive reaches
the disk. Bytes are counted while they are written, headers are not trusted: a member that
unpacks to more than ``max_ratio`` times its compressed size (checked once it passes
``ratio_grace_bytes``, since small files compress extremely well) or an unpacking that
writes more than ``max_total_bytes`` in all is stopped and refused as a likely zip bomb.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import posixpath
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

import pyarrow as pa

from mlmesh_acquire.formats import (
    COMPRESSION_MAGICS,
    TABLE_EXTENSIONS,
    UnreadableTableError,
    sniff_kind,
    strip_compression_suffix,
    zip_is_workbook,
)

#: Compressions that may follow one another (``x.csv.gz.gz``) before the file is refused.
MAX_COMPRESSION_LAYERS = 3
#: Archive levels unpacked: the archive itself and one archive inside it.
MAX_ARCHIVE_DEPTH = 2
#: Bytes per read / write while unpacking.
COPY_BYTES = 1024 * 1024
#: Extensions that make a file a candidate only when no proper table file exists.
WEAK_TABLE_EXTENSIONS = frozenset({".txt", ".data", ".dat"})
#: Extensions of archives that may be nested.
ARCHIVE_EXTENSIONS = frozenset({".zip", ".tar"})
PARQUET_EXTENSIONS = frozenset({".parquet", ".pq", ".parq"})
COMPRESSION_NAMES = {"gz": "gzip", "bz2": "bzip2", "xz": "xz", "zst": "zstd"}


class UnsafeArchiveError(ValueError):
    """An archive refused for safety: a likely zip bomb, a path escaping the extraction
    folder, or nesting too deep."""


class ArchiveBombError(UnsafeArchiveError):
    """Unpacking went past the compression-ratio or total-size limit."""


class ArchiveTraversalError(UnsafeArchiveError):
    """A member's path or link target points outside the extraction folder."""


class ArchiveMemberError(UnreadableTableError):
    """The archive has no table to read, or not the member that was asked for."""


@dataclass(frozen=True)
class ArchiveLimits:
    """Zip-bomb limits (see the module docstring)."""

    max_ratio: float = 200.0
    max_total_bytes: int = 16 * 1024**3
    ratio_grace_bytes: int = 16 * 1024**2
    max_members: int = 100_000

    @classmethod
    def from_settings(cls, settings: Any = None) -> ArchiveLimits:
        """The limits from ``MLMESH_ACQUIRE_ARCHIVE_MAX_RATIO`` and ``..._MAX_TOTAL_BYTES``."""
        if settings is None:
            from mlmesh_common.settings import Settings

            settings = Settings()
        return cls(max_ratio=float(settings.acquire_archive_max_ratio),
                   max_total_bytes=int(settings.acquire_archive_max_total_bytes))


@dataclass(frozen=True)
class ResolvedTable:
    """The table file (or Parquet folder) found inside the layers of a source file."""

    path: Path
    #: Containers unpacked to reach it, outermost first (``("gz", "tar")`` for .tar.gz).
    layers: tuple[str, ...] = ()
    #: The member path inside the archive(s), ``outer/inner`` when nested; ``None`` if none.
    member: str | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Member:
    """A file (or link, folder, device) listed in an archive."""

    name: str
    size: int
    compressed_size: int | None
    kind: str  # file, dir, link, other
    ref: Any = field(repr=False, compare=False)


def container_kind(path: Path) -> str | None:
    """``gz``, ``bz2``, ``xz``, ``zst``, ``zip`` or ``tar`` when ``path`` is one (by its bytes),
    else ``None`` (a table; a workbook is a ZIP but counts as a table)."""
    path = Path(path)
    if path.is_dir():
        return None
    with open(path, "rb") as fh:
        head = fh.read(1024)
    kind = sniff_kind(path.name, head)
    if kind == "xlsx-or-zip":
        return None if zip_is_workbook(path) else "zip"
    if kind in COMPRESSION_MAGICS or kind == "tar":
        return kind
    if path.suffix.lower() == ".tar" and tarfile.is_tarfile(path):
        return "tar"
    return None


def resolve_table(path: Path, work_dir: Path, *, member: str | None = None,
                  limits: ArchiveLimits | None = None) -> ResolvedTable:
    """Unpack ``path`` under ``work_dir`` as far as needed and return where the table is.

    A plain table file or folder comes back as it is. Raises :class:`UnsafeArchiveError`
    (bomb, traversal, nesting), :class:`ArchiveMemberError` (no table / no such member) and
    :class:`~mlmesh_acquire.formats.UnreadableTableError` (a damaged archive).
    """
    unpacker = _Unpacker(Path(work_dir), limits or ArchiveLimits.from_settings())
    return unpacker.resolve(Path(path), member)


class _Budget:
    """Counts unpacked bytes against the limits while copying."""

    def __init__(self, limits: ArchiveLimits) -> None:
        self.limits = limits
        self.total = 0

    def copy(self, source: IO[bytes], target: Path, *, what: str,
             compressed_size: int | None) -> int:
        written = 0
        limits = self.limits
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as out:
            while True:
                chunk = source.read(COPY_BYTES)
                if not chunk:
                    break
                written += len(chunk)
                self.total += len(chunk)
                if self.total > limits.max_total_bytes:
                    raise ArchiveBombError(
                        f"unpacking {what} went past {limits.max_total_bytes:,} bytes in "
                        "total; refused as a likely zip bomb (if the data is genuine, raise "
                        "MLMESH_ACQUIRE_ARCHIVE_MAX_TOTAL_BYTES)"
                    )
                if (compressed_size is not None and written > limits.ratio_grace_bytes
                        and written > limits.max_ratio * max(compressed_size, 1)):
                    raise ArchiveBombError(
                        f"{what} unpacks to more than {limits.max_ratio:g} times its "
                        f"compressed size of {compressed_size:,} bytes (stopped at "
                        f"{written:,} bytes); refused as a likely zip bomb (if the data is "
                        "genuine, raise MLMESH_ACQUIRE_ARCHIVE_MAX_RATIO)"
                    )
                out.write(chunk)
        return written


class _Unpacker:
    def __init__(self, work_dir: Path, limits: ArchiveLimits) -> None:
        self.work_dir = work_dir
        self.limits = limits
        self.budget = _Budget(limits)
        self.warnings: list[str] = []

    def resolve(self, path: Path, wanted: str | None) -> ResolvedTable:
        layers: list[str] = []
        chain: list[str] = []
        compressions = 0
        depth = 0
        label = path.name
        while True:
            kind = container_kind(path)
            if kind is None:
                break
            layers.append(kind)
            if kind in COMPRESSION_MAGICS:
                compressions += 1
                if compressions > MAX_COMPRESSION_LAYERS:
                    raise UnsafeArchiveError(
                        f"{label} is compressed more than {MAX_COMPRESSION_LAYERS} times over; "
                        "refused: give the data with at most one compression"
                    )
                path = self._decompress(path, kind, label)
                continue
            compressions = 0
            depth += 1
            if depth > MAX_ARCHIVE_DEPTH:
                raise UnsafeArchiveError(
                    f"{label} is an archive inside an archive inside an archive; only one "
                    "level of nesting is unpacked, so give the archive that holds the table"
                )
            previous = path
            path, name, wanted = self._unpack(path, kind, label, wanted)
            self._discard(previous)
            chain.append(name)
            label = f"{label}/{name}"
        if wanted:
            self.warnings.append(
                f"source option member={wanted!r} was not used: no archive is left to pick it from"
            )
        return ResolvedTable(path=path, layers=tuple(layers),
                             member="/".join(chain) or None, warnings=tuple(self.warnings))

    # -- compression --------------------------------------------------------------------------

    def _decompress(self, path: Path, kind: str, label: str) -> Path:
        inner = strip_compression_suffix(path.name)
        if inner == path.name:
            inner = path.stem if path.stem and path.stem != path.name else f"{path.name}.out"
        target = Path(tempfile.mkdtemp(prefix="layer-", dir=self.work_dir)) / _safe_leaf(inner)
        opener: Callable[[Path], IO[bytes]] = {
            "gz": gzip.open, "bz2": bz2.open, "xz": lzma.open,
            "zst": lambda p: pa.input_stream(str(p), compression="zstd"),
        }[kind]
        name = COMPRESSION_NAMES[kind]
        try:
            with opener(path) as source:
                self.budget.copy(source, target, what=label,
                                 compressed_size=path.stat().st_size)
        except UnsafeArchiveError:
            raise
        except (EOFError, OSError, lzma.LZMAError, zlib.error, pa.ArrowException,
                ValueError) as exc:
            raise UnreadableTableError(
                f"{label} looks {name}-compressed but cannot be decompressed ({exc}); the "
                "download is probably truncated or damaged, so download it again"
            ) from exc
        finally:
            self._discard(path)
        return target

    def _discard(self, path: Path) -> None:
        """Remove an intermediate file this unpacker wrote (never the source itself)."""
        folder = path.parent
        if folder.parent == self.work_dir and folder.name.startswith(("layer-", "member-")):
            shutil.rmtree(folder, ignore_errors=True)

    # -- archives -----------------------------------------------------------------------------

    def _unpack(self, path: Path, kind: str, label: str,
                wanted: str | None) -> tuple[Path, str, str | None]:
        members = _list_members(path, kind, label, self.limits)
        choice, rest = _choose(members, wanted, label, self.warnings)
        target_dir = Path(tempfile.mkdtemp(prefix="member-", dir=self.work_dir))
        archive_size = path.stat().st_size
        if choice.folder is not None:
            root = choice.name
            target = target_dir / _safe_leaf(PurePosixPath(root).name or "dataset")
            for m in choice.folder:
                relative = m.name[len(root) + 1:] if root else m.name
                self._extract(path, kind, m, target / relative, label, archive_size)
        else:
            target = target_dir / _safe_leaf(PurePosixPath(choice.name).name)
            self._extract(path, kind, choice.members[0], target, label, archive_size)
        return target, choice.name or ".", rest

    def _extract(self, archive: Path, kind: str, member: Member, target: Path, label: str,
                 archive_size: int) -> None:
        what = f"{label} member {member.name}"
        try:
            if kind == "zip":
                info: zipfile.ZipInfo = member.ref
                if info.flag_bits & 0x1:
                    raise ArchiveMemberError(
                        f"{what} is encrypted; give an archive without a password"
                    )
                with zipfile.ZipFile(archive) as zf, zf.open(info) as source:
                    self.budget.copy(source, target, what=what,
                                     compressed_size=min(info.compress_size, archive_size))
            else:
                with tarfile.open(archive, "r:") as tf:
                    source = tf.extractfile(member.ref)
                    if source is None:
                        raise ArchiveMemberError(f"{what} is not a regular file")
                    with source:
                        self.budget.copy(source, target, what=what, compressed_size=None)
        except (UnsafeArchiveError, UnreadableTableError):
            raise
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, zlib.error,
                NotImplementedError, RuntimeError, ValueError) as exc:
            raise UnreadableTableError(
                f"{what} cannot be unpacked ({exc}); the archive is probably damaged or uses "
                "an unsupported compression method: repack it as a plain zip or tar.gz"
            ) from exc


# -- listing and checking members -------------------------------------------------------------

_DRIVE = re.compile(r"^[A-Za-z]:")


def _check_name(raw: str, label: str) -> str:
    name = raw.replace("\\", "/")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if name.startswith("/") or _DRIVE.match(name) or ".." in parts:
        raise ArchiveTraversalError(
            f"{label} holds member {raw!r}, whose path points outside the extraction folder "
            "(an absolute path or '..'); the archive is refused: repack it with relative paths"
        )
    return "/".join(parts)


def _check_link(name: str, target: str, label: str, *, hard: bool) -> None:
    target = target.replace("\\", "/")
    base = "" if hard else posixpath.dirname(name)
    resolved = posixpath.normpath(posixpath.join(base, target))
    if target.startswith("/") or _DRIVE.match(target) or resolved == ".." or \
            resolved.startswith("../"):
        kind = "hard link" if hard else "symbolic link"
        raise ArchiveTraversalError(
            f"{label} holds a {kind} {name!r} -> {target!r} pointing outside the extraction "
            "folder; the archive is refused: repack it without links"
        )


def _list_members(path: Path, kind: str, label: str, limits: ArchiveLimits) -> list[Member]:
    members: list[Member] = []
    try:
        if kind == "zip":
            with zipfile.ZipFile(path) as zf:
                infos = zf.infolist()
                _check_count(len(infos), label, limits)
                for info in infos:
                    name = _check_name(info.filename, label)
                    mode = info.external_attr >> 16
                    if stat.S_ISLNK(mode):
                        with zf.open(info) as fh:
                            _check_link(name, fh.read(4096).decode("utf-8", "replace"), label,
                                        hard=False)
                        members.append(Member(name, 0, None, "link", info))
                    elif info.is_dir():
                        members.append(Member(name, 0, None, "dir", info))
                    else:
                        members.append(Member(name, info.file_size, info.compress_size, "file",
                                              info))
        else:
            with tarfile.open(path, "r:") as tf:
                count = 0
                for info in tf:
                    count += 1
                    _check_count(count, label, limits)
                    name = _check_name(info.name, label)
                    if info.issym() or info.islnk():
                        _check_link(name, info.linkname, label, hard=info.islnk())
                        members.append(Member(name, 0, None, "link", info))
                    elif info.isdir():
                        members.append(Member(name, 0, None, "dir", info))
                    elif info.isfile():
                        members.append(Member(name, info.size, None, "file", info))
                    else:
                        members.append(Member(name, 0, None, "other", info))
    except (UnsafeArchiveError, UnreadableTableError):
        raise
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, zlib.error,
            ValueError) as exc:
        raise UnreadableTableError(
            f"{label} is a {kind} archive that cannot be read ({exc}); it is probably "
            "truncated or damaged, so download it again"
        ) from exc
    return members


def _check_count(count: int, label: str, limits: ArchiveLimits) -> None:
    if count > limits.max_members:
        raise ArchiveBombError(
            f"{label} holds more than {limits.max_members:,} members; refused as a likely "
            "zip bomb: give an archive with fewer files"
        )


# -- choosing the main table ------------------------------------------------------------------


@dataclass
class _Choice:
    name: str
    members: list[Member]
    folder: list[Member] | None = None

    @property
    def size(self) -> int:
        return sum(m.size for m in self.members)


def _hidden(name: str) -> bool:
    parts = name.split("/")
    return any(p.startswith(".") or p == "__MACOSX" for p in parts) or parts[-1].startswith("~$")


def _effective_suffix(name: str) -> str:
    leaf = PurePosixPath(name).name
    inner = strip_compression_suffix(leaf)
    suffix = PurePosixPath(inner).suffix.lower()
    if inner == leaf and suffix in (".gz", ".bz2", ".xz", ".zst"):
        return ""
    return suffix


def _parquet_folders(files: list[Member]) -> dict[str, list[Member]]:
    folders: dict[str, list[Member]] = {}
    for m in files:
        parts = m.name.split("/")
        leaf, dirs = parts[-1], parts[:-1]
        if PurePosixPath(leaf).suffix.lower() not in PARQUET_EXTENSIONS and \
                not leaf.startswith("part-"):
            continue
        hive = next((i for i, p in enumerate(dirs) if "=" in p), None)
        if hive is not None and all("=" in p for p in dirs[hive:]):
            root = "/".join(dirs[:hive])
        elif leaf.startswith("part-") and dirs:
            root = "/".join(dirs)
        else:
            continue
        folders.setdefault(root, []).append(m)
    return folders


def _candidates(members: list[Member]) -> tuple[list[_Choice], list[_Choice], list[_Choice]]:
    files = [m for m in members if m.kind == "file" and not _hidden(m.name)]
    folders = _parquet_folders(files)
    in_folders = {m.name for ms in folders.values() for m in ms}
    strong = [_Choice(root, ms, ms) for root, ms in folders.items()]
    weak: list[_Choice] = []
    nested: list[_Choice] = []
    for m in files:
        if m.name in in_folders:
            continue
        suffix = _effective_suffix(m.name)
        if suffix in WEAK_TABLE_EXTENSIONS:
            weak.append(_Choice(m.name, [m]))
        elif suffix in TABLE_EXTENSIONS:
            strong.append(_Choice(m.name, [m]))
        elif suffix in ARCHIVE_EXTENSIONS or suffix == "" and m.name.lower().endswith(
                (".gz", ".bz2", ".xz", ".zst", ".tgz")):
            nested.append(_Choice(m.name, [m]))
    return strong, weak, nested


def _choose(members: list[Member], wanted: str | None, label: str,
            warnings: list[str]) -> tuple[_Choice, str | None]:
    strong, weak, nested = _candidates(members)
    if wanted:
        return _match(members, strong + weak + nested, wanted, label)
    for tier in (strong, weak, nested):
        if tier:
            ranked = sorted(tier, key=lambda c: (-c.size, c.name))
            chosen = ranked[0]
            if len(ranked) > 1:
                others = ", ".join(c.name or "." for c in ranked[1:6])
                warnings.append(
                    f"{label} holds {len(ranked)} tables; read {chosen.name or '.'!r}, the "
                    f"largest (others: {others}{', ...' if len(ranked) > 6 else ''}); pass "
                    "source option member= to choose another"
                )
            return chosen, None
    listed = ", ".join(m.name for m in members if m.kind == "file")[:300] or "nothing"
    raise ArchiveMemberError(
        f"{label} holds no table file (it contains: {listed}); supported tables are "
        f"{', '.join(sorted(TABLE_EXTENSIONS))}, or name the file with source option member="
    )


def _match(members: list[Member], candidates: list[_Choice], wanted: str,
           label: str) -> tuple[_Choice, str | None]:
    files = {m.name: m for m in members if m.kind == "file"}
    folders = {c.name: c for c in candidates if c.folder is not None}
    if wanted in folders:
        return folders[wanted], None
    if wanted in files:
        return _Choice(wanted, [files[wanted]]), None
    under = [m for name, m in files.items() if name.startswith(wanted + "/")]
    if under and all(PurePosixPath(m.name).suffix.lower() in PARQUET_EXTENSIONS for m in under):
        return _Choice(wanted, under, under), None
    by_leaf = [m for name, m in files.items() if PurePosixPath(name).name == wanted]
    if len(by_leaf) == 1:
        return _Choice(by_leaf[0].name, by_leaf), None
    for name in sorted(files, key=len, reverse=True):
        if wanted.startswith(name + "/"):
            return _Choice(name, [files[name]]), wanted[len(name) + 1:]
    listed = ", ".join(c.name or "." for c in candidates[:20]) or ", ".join(list(files)[:20])
    hint = " (more than one file has that name: give its path)" if len(by_leaf) > 1 else ""
    raise ArchiveMemberError(
        f"{label} has no member {wanted!r}{hint}; its tables: {listed or 'none'}"
    )


def _safe_leaf(name: str) -> str:
    """A file name we choose ourselves (never a path from the archive)."""
    leaf = re.sub(r"[^A-Za-z0-9._=-]+", "_", PurePosixPath(name.replace("\\", "/")).name)
    leaf = leaf.lstrip(".") or "member"
    return leaf[:200]
