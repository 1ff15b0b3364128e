"""The abstract dataset source, what a fetch is given and what it returns."""

from __future__ import annotations

import abc
import hashlib
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, ClassVar, TypeVar
from urllib.parse import urlsplit

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from mlmesh_acquire.safety import FetchLimits, NetworkPolicy, redact_url
from mlmesh_acquire.source_errors import SourceTooLargeError, TransientSourceError
from mlmesh_acquire.tables import detect_format, media_type_for

log = logging.getLogger(__name__)
T = TypeVar("T")

#: ``progress(bytes_done, total_or_None)``, called as bytes arrive.
ProgressCallback = Callable[[int, int | None], None]
#: Size of each read / write while streaming.
CHUNK_BYTES = 1024 * 1024
#: ``FetchedFile.format`` of a fetched folder (a partitioned table, say).
FOLDER_FORMAT = "folder"


@dataclass(frozen=True)
class FetchedFile:
    """A source fetched to local disk (one file, or a folder for a partitioned table)."""

    path: Path
    #: sha256 of the file; for a folder, of its sorted ``relative-path NUL sha256`` lines.
    sha256: str
    size_bytes: int
    #: The format seen in the first bytes, then the name (``folder`` for a folder).
    format: str
    #: IANA media type matching ``format``.
    media_type: str
    #: The media type the server announced (``Content-Type``), if any.
    declared_media_type: str | None = None
    #: The target column the source itself names (OpenML's default target, UCI's target).
    suggested_target: str | None = None
    #: What to record about the source in ``source.json``: names, versions, licence,
    #: redacted URLs. Never credentials.
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FetchContext:
    """Everything a :class:`Source` needs besides the URI."""

    dest_dir: Path
    #: The experiment's ``source_options`` (each source documents the ones it reads).
    options: Mapping[str, str] = field(default_factory=dict)
    policy: NetworkPolicy = field(default_factory=NetworkPolicy)
    limits: FetchLimits = field(default_factory=FetchLimits)
    progress: ProgressCallback | None = None
    #: Where credentials and endpoint overrides are read from (``os.environ`` by default).
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)

    def report(self, done: int, total: int | None) -> None:
        """Pass progress on, if anyone listens."""
        if self.progress is not None:
            self.progress(done, total)

    def after(self, bytes_before: int) -> FetchContext:
        """A context whose progress counts on from ``bytes_before`` (for multi-file fetches)."""
        if self.progress is None or bytes_before == 0:
            return self
        outer = self.progress
        return replace(self, progress=lambda done, _total: outer(bytes_before + done, None))

    def endpoint(self, env_names: tuple[str, ...], default: str) -> tuple[str, NetworkPolicy]:
        """An API base URL (the first of ``env_names`` set, else ``default``) and the policy
        to reach it with: an endpoint the operator configured is trusted even when it is
        not public (a mirror, a test server); where it redirects to is still checked."""
        for name in env_names:
            value = (self.env.get(name) or "").strip()
            if value:
                host = urlsplit(value).hostname or ""
                return value.rstrip("/"), self.policy.trusting(host)
        return default.rstrip("/"), self.policy

    def option(self, *names: str) -> str | None:
        """The first non-empty option among ``names``, stripped."""
        for name in names:
            value = (self.options.get(name) or "").strip()
            if value:
                return value
        return None


class Source(abc.ABC):
    """One kind of dataset location, chosen by the URI's scheme.

    Subclasses name their ``schemes`` and implement :meth:`fetch`; the registry in
    :mod:`mlmesh_acquire.sources` maps each scheme to its class.
    """

    #: The URI schemes this source serves.
    schemes: ClassVar[tuple[str, ...]] = ()

    @abc.abstractmethod
    def fetch(self, uri: str, ctx: FetchContext) -> FetchedFile:
        """Bring ``uri`` into ``ctx.dest_dir`` and say what arrived.

        Errors a retry cannot fix are ``ValueError`` subclasses, transient ones are
        :class:`~mlmesh_acquire.source_errors.TransientSourceError`; messages carry no
        credentials.
        """

    def dependency(self, uri: str) -> str:
        """The name of the external service behind ``uri`` (one circuit breaker each)."""
        parts = urlsplit(uri)
        return f"{parts.scheme}:{parts.netloc.rpartition('@')[2]}"

    def describe(self, uri: str) -> str:
        """``uri`` as it may be shown in logs, events and messages."""
        return redact_url(uri)


class PartialFile:
    """A download under a ``.part`` name, hashed as it is written, renamed when complete.

    Appends survive a broken connection, so a download can resume where it stopped;
    :meth:`restart` empties it when the server cannot resume. The size cap is enforced
    on every write.
    """

    def __init__(self, target: Path, *, limits: FetchLimits, label: str,
                 progress: ProgressCallback | None = None) -> None:
        self.target = target
        self.tmp = target.with_name(target.name + ".part")
        self.label = label
        self._limits = limits
        self._progress = progress
        self._digest = hashlib.sha256()
        self._head = b""
        self.done = 0
        #: The announced size, when known.
        self.total: int | None = None
        target.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[bytes] | None = open(self.tmp, "wb")

    def restart(self) -> None:
        """Throw away what was written and start from byte 0."""
        assert self._fh is not None
        self._fh.seek(0)
        self._fh.truncate()
        self._digest = hashlib.sha256()
        self._head = b""
        self.done = 0

    def write(self, chunk: bytes) -> None:
        """Append ``chunk`` (refusing to grow past the size cap)."""
        if not chunk:
            return
        assert self._fh is not None
        if self.done + len(chunk) > self._limits.max_bytes:
            raise SourceTooLargeError(
                f"{self.label} exceeds the {self._limits.max_bytes}-byte limit "
                "(MLMESH_ACQUIRE_MAX_BYTES); raise the limit or give a smaller extract")
        if len(self._head) < 16:
            self._head += chunk[: 16 - len(self._head)]
        self._digest.update(chunk)
        self._fh.write(chunk)
        self.done += len(chunk)
        if self._progress is not None:
            self._progress(self.done, self.total)

    def finish(self, **extra: Any) -> FetchedFile:
        """Rename to the final name and describe the file; ``extra`` goes to FetchedFile."""
        assert self._fh is not None
        self._fh.close()
        self._fh = None
        self.tmp.replace(self.target)
        fmt = detect_format(self.target, self._head)
        return FetchedFile(path=self.target, sha256=self._digest.hexdigest(),
                           size_bytes=self.done, format=fmt, media_type=media_type_for(fmt),
                           **extra)

    def discard(self) -> None:
        """Close and delete the partial file."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> PartialFile:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if self._fh is not None:
            self.discard()


def safe_name(name: str, default: str = "download") -> str:
    """A file name without directory parts or characters that are awkward on disk."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return name[:200] or default


def safe_segment(name: str) -> str:
    """One path segment inside a fetched folder: like :func:`safe_name`, but ``=`` is kept
    so Hive-style partition folders (``year=2024``) survive."""
    name = re.sub(r"[^A-Za-z0-9._=-]+", "_", name).strip("._")
    return name[:200] or "part"


def folder_digest(entries: list[tuple[str, str]]) -> str:
    """The sha256 of a folder from its ``(relative path, sha256)`` entries."""
    digest = hashlib.sha256()
    for rel, sha in sorted(entries):
        digest.update(f"{rel}\0{sha}\n".encode())
    return digest.hexdigest()


def with_retries(limits: FetchLimits, fn: Callable[[], T]) -> T:
    """Call ``fn``, retrying TransientSourceError with exponential backoff and jitter.

    ``limits.attempts`` tries in all; a server's ``Retry-After`` (``retry_after_s`` on the
    error) lengthens the pause up to ``limits.retry_max_s``. The last error is raised
    again with the number of attempts added to its message.
    """
    attempts = max(1, limits.attempts)
    backoff = wait_exponential_jitter(initial=limits.retry_initial_s, max=limits.retry_max_s,
                                      jitter=limits.retry_initial_s)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hinted = getattr(exc, "retry_after_s", None)
        pause = backoff(state)
        if hinted:
            pause = max(pause, min(float(hinted), limits.retry_max_s))
        return pause

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning("%s; retrying in %.1f s (attempt %d of %d)", exc,
                    state.next_action.sleep if state.next_action else 0.0,
                    state.attempt_number + 1, attempts)

    retrying = Retrying(stop=stop_after_attempt(attempts), wait=wait,
                        retry=retry_if_exception_type(TransientSourceError),
                        before_sleep=before_sleep, reraise=True)
    try:
        return retrying(fn)
    except TransientSourceError as exc:
        if attempts == 1:
            raise
        raise TransientSourceError(f"{exc} (gave up after {attempts} attempts)", exc.status,
                                   kind=exc.kind) from None
