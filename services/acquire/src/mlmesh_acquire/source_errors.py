"""Errors raised while fetching a dataset source.

Problems that retrying cannot fix are ``ValueError`` subclasses (the runtime dead-letters
them at once and fails the experiment with the message); transient ones have class names
starting with ``Transient`` (the runtime retries them). Messages never contain
credentials: URLs in them are passed through :func:`mlmesh_acquire.safety.redact_url`.
"""

from __future__ import annotations


class SourceError(ValueError):
    """A dataset source problem that retrying will not fix."""


class UnsupportedSourceError(SourceError):
    """The URI's scheme (or form) is not one acquire can fetch."""


class SourceNotFoundError(SourceError):
    """The source does not exist or refuses access (missing file, HTTP 4xx)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        #: The HTTP status, or ``None`` for a local file.
        self.status = status


class MissingCredentialsError(SourceError):
    """The source needs credentials that are not configured."""


class ChecksumMismatchError(SourceError):
    """The fetched bytes' sha256 differs from the expected digest."""

    def __init__(self, message: str, expected: str, actual: str) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual


class SourceTooLargeError(SourceError):
    """The source is larger than the allowed maximum."""


class UnsafeSourceError(SourceError):
    """The network policy refuses the address (SSRF guard) or the redirect chain."""


class RedirectLoopError(UnsafeSourceError):
    """The redirects come back to a URL already visited, or there are too many of them."""


class TransientSourceError(Exception):
    """A failure worth retrying later (HTTP 5xx / 408 / 425 / 429, a stall, a broken transfer).

    ``kind`` says which: ``status``, ``connect``, ``timeout``, ``stall``, ``truncated`` or
    ``broken``. ``retry_after_s`` carries a server's ``Retry-After`` when it sent one.
    """

    def __init__(self, message: str, status: int | None = None, *, kind: str = "status",
                 retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.retry_after_s = retry_after_s
