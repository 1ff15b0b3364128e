from __future__ import annotations

from mlmesh_common.artifacts._base import ArtifactStore


def open_store(root: str, endpoint_url: str | None = None) -> ArtifactStore:
    """The store at `root`: a folder path, file:///path or s3://bucket/prefix."""
    if root.startswith("s3://"):
        from mlmesh_common.artifacts._s3 import S3ArtifactStore

        return S3ArtifactStore(root, endpoint_url)
    from mlmesh_common.artifacts._local import LocalArtifactStore

    return LocalArtifactStore(root.removeprefix("file://"))
