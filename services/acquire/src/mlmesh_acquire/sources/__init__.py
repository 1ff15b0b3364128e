"""Dataset sources: one :class:`Source` per URI scheme, chosen with :func:`source_for`.

=============  ========================================================================
scheme         what it fetches
=============  ========================================================================
``file``       a local file or folder (also plain absolute paths)
``http(s)``    a URL, resumable, through the SSRF guard
``s3``         an object or a prefix (boto3; ``MLMESH_S3_ENDPOINT_URL`` for MinIO)
``kaggle``     ``kaggle://owner/dataset[/file]`` through the Kaggle API
``hf``         ``hf://datasets/<repo>[/<config>/<split>]`` from the Hugging Face Hub
``openml``     ``openml://<id>``, Parquet or ARFF, with its default target
``uci``        ``uci://<id>`` from the UCI repository, with its target variables
=============  ========================================================================

The modules behind this surface are private; import from here.
"""

from mlmesh_acquire.sources._base import (
    FOLDER_FORMAT,
    FetchContext,
    FetchedFile,
    PartialFile,
    ProgressCallback,
    Source,
    with_retries,
)
from mlmesh_acquire.sources._file import FileSource
from mlmesh_acquire.sources._http import Credentials, HttpSession, HttpSource
from mlmesh_acquire.sources._huggingface import HuggingFaceSource
from mlmesh_acquire.sources._kaggle import KaggleSource
from mlmesh_acquire.sources._openml import OpenMLSource
from mlmesh_acquire.sources._registry import register_source, source_for, supported_schemes
from mlmesh_acquire.sources._s3 import S3Source
from mlmesh_acquire.sources._uci import UCISource

__all__ = [
    "FOLDER_FORMAT",
    "Credentials",
    "FetchContext",
    "FetchedFile",
    "FileSource",
    "HttpSession",
    "HttpSource",
    "HuggingFaceSource",
    "KaggleSource",
    "OpenMLSource",
    "PartialFile",
    "ProgressCallback",
    "S3Source",
    "Source",
    "UCISource",
    "register_source",
    "source_for",
    "supported_schemes",
    "with_retries",
]
