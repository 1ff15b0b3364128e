from __future__ import annotations

import hashlib
import json
import mimetypes
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path

from mlmesh_common.errors import PermanentError

MANIFEST = "manifest.json"


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

    def put_file(self, local: Path, key: str, media_type: str = "") -> StoredArtifact:
        """Store a local file under `key` (overwriting: a redo replaces, never duplicates)."""
        media_type = media_type or mimetypes.guess_type(local.name)[0] or ""
        self._upload(local, key, media_type)
        return StoredArtifact(self.uri_for(key), sha256_file(local), local.stat().st_size,
                              media_type)

    def put_dir(self, local_dir: Path, prefix: str, producer: str) -> StoredArtifact:
        """Store every file under `local_dir` at `prefix` plus a manifest; returns the folder's
        artifact (its sha256 is the manifest's)."""
        entries = []
        for path in sorted(p for p in local_dir.rglob("*") if p.is_file()):
            rel = path.relative_to(local_dir).as_posix()
            if rel == MANIFEST:
                continue
            stored = self.put_file(path, f"{prefix}/{rel}")
            entries.append({"file": rel, "sha256": stored.sha256, "size": stored.size_bytes,
                            "media_type": stored.media_type})
        manifest = write_manifest(local_dir, entries, producer)
        stored = self.put_file(manifest, f"{prefix}/{MANIFEST}", "application/json")
        return StoredArtifact(self.uri_for(prefix), stored.sha256, sum(e["size"] for e in entries),
                              "inode/directory")

    def get_file(self, uri: str, local: Path, sha256: str = "") -> Path:
        """Fetch `uri` to `local`; raise ChecksumError when `sha256` is given and differs."""
        local.parent.mkdir(parents=True, exist_ok=True)
        self._download(uri, local)
        if sha256 and (actual := sha256_file(local)) != sha256:
            raise ChecksumError(f"artifact {uri} has sha256 {actual}, the event recorded "
                                f"{sha256}: the store was modified; rerun the producing stage")
        return local

    def get_dir(self, uri: str, local_dir: Path, sha256: str = "") -> Path:
        """Fetch a folder stored by put_dir, checking its manifest and every file's sha256."""
        manifest_path = self.get_file(f"{uri.rstrip('/')}/{MANIFEST}", local_dir / MANIFEST, sha256)
        manifest = json.loads(manifest_path.read_text())
        for entry in manifest["files"]:
            self.get_file(f"{uri.rstrip('/')}/{entry['file']}", local_dir / entry["file"],
                          entry["sha256"])
        return local_dir


def write_manifest(folder: Path, entries: list[dict], producer: str) -> Path:
    """Write manifest.json (file, sha256, size, producer) into `folder`."""
    path = folder / MANIFEST
    path.write_text(json.dumps({"producer": producer, "created_at": time.time(),
                                "files": entries}, indent=2, sort_keys=True))
    return path


def as_dict(artifact: StoredArtifact) -> dict:
    return asdict(artifact)
