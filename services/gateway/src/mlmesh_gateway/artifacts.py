"""An experiment's artifacts through the gateway: list and fetch files under its folder."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from mlmesh_common.artifacts import ArtifactStore, experiment_prefix
from mlmesh_common.artifacts._local import LocalArtifactStore

MAX_LISTED = 5000


class ArtifactNotFound(KeyError):
    """No such file under the experiment's artifact folder."""


@dataclass
class ArtifactFile:
    """A file to send: where it is on this machine and whether to delete it afterwards."""

    path: Path
    name: str
    temporary: bool = False


def _clean(relative: str) -> str:
    parts = PurePosixPath(relative.strip("/")).parts
    if not parts or any(p in ("..", ".", "") for p in parts) or "\\" in relative:
        raise ArtifactNotFound(relative)
    return "/".join(parts)


def _root_key(project: str, experiment_id: str) -> str:
    return experiment_prefix(project, experiment_id, "").rstrip("/")


def relative_path(uri: str, project: str, experiment_id: str) -> str:
    """The path of artifact `uri` relative to the experiment's folder ('' when outside)."""
    marker = f"/{_root_key(project, experiment_id)}/"
    head, sep, tail = uri.partition(marker)
    return tail if sep else ""


def list_files(store: ArtifactStore, project: str, experiment_id: str) -> list[dict]:
    """Files under the experiment's folder (path relative to it, size); local stores only."""
    if not isinstance(store, LocalArtifactStore):
        return []
    root = store.root / _root_key(project, experiment_id)
    if not root.is_dir():
        return []
    out = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            out.append({"path": path.relative_to(root).as_posix(), "size": path.stat().st_size})
            if len(out) >= MAX_LISTED:
                break
    return out


def fetch(store: ArtifactStore, project: str, experiment_id: str, relative: str,
          ) -> ArtifactFile:
    """The file at `relative` under the experiment's folder; never anything outside it."""
    key = f"{_root_key(project, experiment_id)}/{_clean(relative)}"
    if isinstance(store, LocalArtifactStore):
        root = (store.root / _root_key(project, experiment_id)).resolve()
        path = (store.root / key).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise ArtifactNotFound(relative)
        return ArtifactFile(path, path.name)
    uri = store.uri_for(key)
    if not store.exists(uri):
        raise ArtifactNotFound(relative)
    handle = tempfile.NamedTemporaryFile(delete=False, suffix="-" + PurePosixPath(key).name)
    handle.close()
    store.get_file(uri, Path(handle.name))
    return ArtifactFile(Path(handle.name), PurePosixPath(key).name, temporary=True)
