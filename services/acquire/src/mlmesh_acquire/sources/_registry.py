"""Which :class:`Source` serves which URI scheme."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from mlmesh_acquire.safety import redact_url
from mlmesh_acquire.source_errors import UnsupportedSourceError
from mlmesh_acquire.sources._base import Source

_SOURCES: dict[str, type[Source]] = {}


def register_source(cls: type[Source]) -> type[Source]:
    """Class decorator: serve each of ``cls.schemes`` with ``cls``."""
    for scheme in cls.schemes:
        _SOURCES[scheme.lower()] = cls
    return cls


def supported_schemes() -> tuple[str, ...]:
    """Every registered scheme, in registration order."""
    return tuple(_SOURCES)


def source_for(uri: str) -> Source:
    """The source that fetches ``uri``; a plain absolute path counts as ``file``.

    Raises UnsupportedSourceError naming the supported schemes.
    """
    try:
        scheme = urlsplit(uri).scheme.lower()
    except ValueError as exc:
        raise UnsupportedSourceError(f"the dataset URI is not a valid URL ({exc}); check "
                                     "it") from None
    if not scheme and os.path.isabs(uri):
        scheme = "file"
    cls = _SOURCES.get(scheme)
    if cls is None:
        shown = f"scheme {scheme!r}" if scheme else "a relative path"
        raise UnsupportedSourceError(
            f"cannot fetch {redact_url(uri)!r}: {shown} is not supported; use one of "
            f"{', '.join(s + '://' for s in supported_schemes())} or an absolute file path")
    return cls()
