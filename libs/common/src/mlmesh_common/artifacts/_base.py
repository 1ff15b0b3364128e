from __future__ import annotations

import hashlib
import json
import mimetypes
import tempfile
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path

from mlmesh_common.errors import PermanentError

MANIFEST = "manifest.json"
VERSION_CHARS = 12  # hex characters of the content hash naming a write-once folder


class ChecksumError(PermanentError):
    """A stored artifact's bytes do not match the checksum recorded for them."""


@dataclass(frozen=True)
class StoredArtifact:
    """Where an artifact lives and what its bytes hash to."""

    uri: str
    sha256: str
    size_bytes: int
    media_type: str = ""


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, streamed."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def experiment_prefix(project: str, experiment_id: str, stage: str) -> str:
    """The key prefix of one stage of one experiment."""
    return f"projects/{project or 'default'}/experiments/{experiment_id}/{stage}"


class ArtifactStore(ABC):
    """Stores files under keys and hands them back by URI, checking sha256 on the way."""

    root_uri: str

    @abstractmethod
    def uri_for(self, key: str) -> str:
        """The URI a key is stored at."""

    @abstractmethod
    def _upload(self, local: Path, key: str, media_type: str) -> None: ...

    @abstractmethod
    def _download(self, uri: str, local: Path) -> None: ...

    @abstractmethod
    def exists(self, uri: str) -> bool:
        """True when something is stored at `uri`."""

    def put_file(self, local: Path, key: str, media_type: str = "",
                 versioned: bool = False) -> StoredArtifact:
        """Store a local file under `key`.

        Plain keys are overwritten. With `versioned`, the file goes to
        ``<parent of key>/<content version>/<name>``: write-once, so a redo that produces
        other bytes lands beside the first output instead of replacing what readers of the
        first output will fetch and verify."""
        media_type = media_type or mimetypes.guess_type(local.name)[0] or ""
        digest = sha256_file(local)
        if versioned:
            parent, _, name = key.rpartition("/")
            key = f"{parent}/{digest[:VERSION_CHARS]}/{name}" if parent else \
                f"{digest[:VERSION_CHARS]}/{name}"
        self._upload(local, key, media_type)
        return StoredArtifact(self.uri_for(key), digest, local.stat().st_size, media_type)

    def put_dir(self, local_dir: Path, prefix: str, producer: str) -> StoredArtifact:
        """Store every file under `local_dir` plus a manifest, write-once.

        The folder lands at ``<prefix>/<content version>``, the version being a hash of every
        file's path and sha256: a redo with the same bytes reuses the folder (and its first
        manifest, so the sha256 recorded by earlier events stays true); a redo with other
        bytes gets a folder of its own. Returns the folder's artifact, whose sha256 is the
        manifest's."""
        files = sorted(p for p in local_dir.rglob("*")
                       if p.is_file() and p.relative_to(local_dir).as_posix() != MANIFEST)
        entries = [{"file": path.relative_to(local_dir).as_posix(), "sha256": sha256_file(path),
                    "size": path.stat().st_size,
                    "media_type": mimetypes.guess_type(path.name)[0] or ""} for path in files]
        folder = f"{prefix}/{content_version(entries)}"
        manifest_uri = self.uri_for(f"{folder}/{MANIFEST}")
        size = sum(e["size"] for e in entries)
        if self.exists(manifest_uri):  # the same bytes were stored before: keep that copy
            with tempfile.TemporaryDirectory() as tmp:
                kept = self._verified_manifest(manifest_uri, Path(tmp) / MANIFEST, entries)
            if kept:
                return StoredArtifact(self.uri_for(folder), kept, size, "inode/directory")
        for path, entry in zip(files, entries, strict=True):
            self._upload(path, f"{folder}/{entry['file']}", entry["media_type"])
        manifest = write_manifest(local_dir, entries, producer)
        stored = self.put_file(manifest, f"{folder}/{MANIFEST}", "application/json")
        return StoredArtifact(self.uri_for(folder), stored.sha256, size, "inode/directory")

    def _verified_manifest(self, uri: str, local: Path, entries: list[dict]) -> str:
        """The sha256 of the manifest at `uri` when it lists exactly `entries`, else ''."""
        self._download(uri, local)
        try:
            listed = json.loads(local.read_text())["files"]
        except (ValueError, KeyError):
            return ""
        return sha256_file(local) if listed == entries else ""

    def get_file(self, uri: str, local: Path, sha256: str = "") -> Path:
        """Fetch `uri` to `local`; raise ChecksumError when `sha256` is given and differs."""
        local.parent.mkdir(parents=True, exist_ok=True)
        self._download(uri, local)
        if sha256 and (actual := sha256_file(local)) != sha256:
            raise ChecksumError(f"artifact {uri} has sha256 {actual}, the event recorded "
                                f"{sha256}: the store was modified; rerun the producing stage")
        return local

    def folder_files(self, uri: str, local_dir: Path, sha256: str = "") -> dict[str, str]:
        """File -> sha256 of a folder stored by put_dir, read from its manifest (fetched into
        `local_dir` and checked against `sha256`), to fetch single files of it."""
        manifest = self.get_file(f"{uri.rstrip('/')}/{MANIFEST}", local_dir / MANIFEST, sha256)
        return {e["file"]: e["sha256"] for e in json.loads(manifest.read_text())["files"]}

    def get_dir(self, uri: str, local_dir: Path, sha256: str = "") -> Path:
        """Fetch a folder stored by put_dir, checking its manifest and every file's sha256."""
        for name, digest in self.folder_files(uri, local_dir, sha256).items():
            self.get_file(f"{uri.rstrip('/')}/{name}", local_dir / name, digest)
        return local_dir


def content_version(entries: list[dict]) -> str:
    """The folder name of write-once content: a short hash of every (path, sha256)."""
    digest = hashlib.sha256()
    for entry in entries:
        digest.update(f"{entry['file']}\0{entry['sha256']}\n".encode())
    return digest.hexdigest()[:VERSION_CHARS]


def write_manifest(folder: Path, entries: list[dict], producer: str) -> Path:
    """Write manifest.json (file, sha256, size, producer) into `folder`."""
    path = folder / MANIFEST
    path.write_text(json.dumps({"producer": producer, "created_at": time.time(),
                                "files": entries}, indent=2, sort_keys=True))
    return path


def as_dict(artifact: StoredArtifact) -> dict:
    return asdict(artifact)
