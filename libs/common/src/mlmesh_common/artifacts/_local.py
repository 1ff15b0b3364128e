from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

from mlmesh_common.artifacts._base import ArtifactStore


class LocalArtifactStore(ArtifactStore):
    """The embedded default: a folder on this machine (file:// URIs)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.root_uri = self.root.as_uri()

    def uri_for(self, key: str) -> str:
        return (self.root / key).as_uri()

    def path_of(self, uri: str) -> Path:
        """The local path behind a file:// URI of this store."""
        parsed = urlparse(uri)
        if parsed.scheme != "file":
            raise ValueError(f"{uri!r} is not a file:// URI of the local artifact store")
        path = Path(unquote(parsed.path)).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"{uri!r} is outside the artifact root {self.root}")
        return path

    def _upload(self, local: Path, key: str, media_type: str) -> None:
        dest = self.root / key
        dest.parent.mkdir(parents=True, exist_ok=True)
        if local.resolve() == dest.resolve():
            return
        # Write to a temp file and rename so readers never see half a file.
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
        os.close(fd)
        shutil.copyfile(local, tmp)
        os.replace(tmp, dest)

    def _download(self, uri: str, local: Path) -> None:
        src = self.path_of(uri)
        if not src.is_file():
            raise FileNotFoundError(f"no artifact at {uri}")
        if src != local.resolve():
            shutil.copyfile(src, local)

    def exists(self, uri: str) -> bool:
        return self.path_of(uri).exists()
