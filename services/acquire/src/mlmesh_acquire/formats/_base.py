"""The small interface every format reader implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

from mlmesh_acquire.formats._options import ReadOptions
from mlmesh_acquire.formats._sink import ParquetSink


class TableReader(ABC):
    """Reads one table format and streams it into a :class:`ParquetSink`.

    Subclasses set the class attributes and implement :meth:`convert`; they raise
    :class:`~mlmesh_acquire.formats.UnreadableTableError` for content they cannot read.
    """

    #: The format's name as :func:`~mlmesh_acquire.tables.detect_format` reports it.
    name: ClassVar[str]
    #: File name extensions (lower case, with the dot) that suggest this format.
    extensions: ClassVar[tuple[str, ...]] = ()
    #: IANA media type (or the customary one).
    media_type: ClassVar[str] = "application/octet-stream"
    #: The ``source_options`` keys this reader honours.
    option_keys: ClassVar[tuple[str, ...]] = ()
    #: Words for error messages, e.g. "CSV".
    title: ClassVar[str]

    @abstractmethod
    def convert(
        self, path: Path, sink: ParquetSink, options: ReadOptions, *, chunk_bytes: int
    ) -> None:
        """Read ``path`` and write its rows to ``sink`` in chunks of about ``chunk_bytes``."""

    @staticmethod
    def label(path: Path) -> str:
        """How error messages name the file."""
        return path.name or str(path)
