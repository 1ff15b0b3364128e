"""The artifact store: a local folder or S3, behind one interface.

Layout: `<root>/projects/<project>/experiments/<experiment>/<stage>/...`, each stage
writing a manifest.json (file, sha256, size, producer) next to what it wrote.
"""

from mlmesh_common.artifacts._base import (
    ArtifactStore,
    ChecksumError,
    StoredArtifact,
    experiment_prefix,
    sha256_file,
)
from mlmesh_common.artifacts._factory import open_store

__all__ = ["ArtifactStore", "ChecksumError", "StoredArtifact", "experiment_prefix", "open_store",
           "sha256_file"]
