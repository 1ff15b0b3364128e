"""``http://`` and ``https://`` sources, and the HTTP session the API sources share.

An :class:`HttpSession` makes every request through the SSRF-guarded client, follows
redirects itself (each hop checked, loops and overlong chains refused, credentials sent
only to the origin they belong to), retries transient failures with exponential backoff
and jitter, and streams downloads to disk, resuming over ``Range`` after a broken
connection when the server names a validator (a strong ``ETag`` or ``Last-Modified``,
sent back as ``If-Range``). A server that ignores the range gets the download restarted
from byte 0.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass, field, replace
from email.message import Message
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from mlmesh_acquire.safety import NetworkPolicy, guarded_client, redact_url
from mlmesh_acquire.source_errors import (
    RedirectLoopError,
    SourceError,
    SourceNotFoundError,
    TransientSourceError,
    UnsafeSourceError,
    UnsupportedSourceError,
)
from mlmesh_acquire.sources._base import (
    FetchContext,
    FetchedFile,
    PartialFile,
    Source,
    safe_name,
    with_retries,
)
from mlmesh_acquire.sources._registry import register_source

log = logging.getLogger(__name__)

#: HTTP statuses in the 4xx range that are worth retrying.
RETRYABLE_CLIENT_STATUSES = frozenset({408, 425, 429})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: The most an API's JSON answer may weigh.
MAX_JSON_BYTES = 64 * 1024 * 1024
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.I)


@dataclass(frozen=True)
class Credentials:
    """Headers that authenticate to one origin: sent to no other, never shown."""

    origin: tuple[str, str, int]
    headers: Mapping[str, str] = field(repr=False)

    @classmethod
    def for_url(cls, url: str, headers: Mapping[str, str]) -> Credentials:
        return cls(_origin(url), dict(headers))

    def applies_to(self, url: str) -> bool:
        return _origin(url) == self.origin


def _origin(url: str) -> tuple[str, str, int]:
    parsed = httpx.URL(url)
    port = parsed.port or {"http": 80, "https": 443}.get(parsed.scheme, 0)
    return parsed.scheme, parsed.host, port


class HttpSession:
    """A guarded client for one fetch: checked redirects, retries, resumable downloads."""

    def __init__(self, ctx: FetchContext, *, policy: NetworkPolicy | None = None,
                 credentials: Credentials | None = None) -> None:
        self.ctx = ctx
        self.limits = ctx.limits
        self.credentials = credentials
        self._client = guarded_client(policy or ctx.policy, ctx.limits)

    def __enter__(self) -> HttpSession:
        return self

    def __exit__(self, *_: object) -> None:
        self._client.close()

    # -- public ---------------------------------------------------------------------------
    def get_json(self, url: str, *, accept_statuses: tuple[int, ...] = ()) -> tuple[int, Any]:
        """GET ``url`` as JSON: ``(status, parsed body)``.

        Statuses in ``accept_statuses`` are returned (body parsed if it is JSON, else
        ``None``) for the caller to explain; other 4xx raise SourceNotFoundError, 5xx /
        408 / 429 and network trouble are retried, then raise TransientSourceError.
        """
        label = redact_url(url)

        def attempt() -> tuple[int, Any]:
            response, final = self._send_following(url, {"Accept": "application/json"})
            with closing(response):
                status = response.status_code
                if status not in accept_statuses:
                    self._check_status(response, url, final)
                body = self._read_all(response, label, MAX_JSON_BYTES)
            try:
                return status, json.loads(body)
            except ValueError:
                if status in accept_statuses:
                    return status, None
                raise SourceNotFoundError(
                    f"GET {label} did not answer with JSON (HTTP {status}, "
                    f"{response.headers.get('content-type', 'no content type')}); check the "
                    "API endpoint setting", status=status) from None

        return with_retries(self.limits, attempt)

    def download(self, url: str, dest_dir: Path, *, filename: str | None = None,
                  label: str | None = None, offset_bytes: int = 0) -> FetchedFile:
        """Stream ``url`` into ``dest_dir`` (resuming after breaks) and describe the file.

        The file name is ``filename``, else the one in ``Content-Disposition``, else the
        last segment of the final URL. ``offset_bytes`` is added to the progress reported
        (for the later files of a multi-file fetch). Raises SourceTooLargeError as soon as
        the announced or the received size passes the cap; after the retries,
        TransientSourceError says whether the transfer stalled or kept breaking off.
        """
        label = label or redact_url(url)
        stall_s = self.limits.stall_timeout_s
        progress = self.ctx.after(offset_bytes).progress
        state: dict[str, Any] = {"partial": None, "validator": None, "declared": None}

        def attempt() -> None:
            partial: PartialFile | None = state["partial"]
            headers: dict[str, str] = {}
            resuming = partial is not None and partial.done > 0 and state["validator"]
            if resuming:
                assert partial is not None
                headers["Range"] = f"bytes={partial.done}-"
                headers["If-Range"] = state["validator"]
            elif partial is not None and partial.done:
                partial.restart()  # nothing to resume safely with: start over
            response, final = self._send_following(url, headers)
            with closing(response):
                status = response.status_code
                if resuming and status == 416:
                    assert partial is not None
                    if _content_range(response)[2] == partial.done:
                        return  # everything had arrived already
                    refused_at = partial.done
                    partial.restart()
                    state["validator"] = None
                    raise TransientSourceError(
                        f"GET {label}: the server refused to resume at byte {refused_at}; "
                        "starting over", status, kind="broken")
                self._check_status(response, url, final)
                encoded = response.headers.get("content-encoding", "identity") != "identity"
                if status == 206:
                    start, _, total = _content_range(response)
                    offset = partial.done if (resuming and partial is not None) else 0
                    if start != offset:
                        if partial is not None:
                            partial.restart()
                        state["validator"] = None
                        raise TransientSourceError(
                            f"GET {label}: the server resumed at byte {start}, not {offset}; "
                            "starting over", status, kind="broken")
                else:
                    if partial is not None and partial.done:
                        log.info("%s ignored the range request; downloading from byte 0", label)
                        partial.restart()
                    total = None if encoded else _content_length(response)
                self.limits.check_size(total, f"GET {label}")
                if partial is None:
                    name = filename or _http_filename(response, final)
                    partial = PartialFile(Path(dest_dir) / safe_name(name), limits=self.limits,
                                          label=f"GET {label}", progress=progress)
                    state["partial"] = partial
                partial.total = total
                state["validator"] = None if encoded else _validator(response)
                content_type = response.headers.get("content-type")
                state["declared"] = (content_type.split(";")[0].strip().lower()
                                     if content_type else None)
                _set_body_read_timeout(response, stall_s)
                # No chunk size: bytes are written as they arrive, so a break loses none.
                chunks = response.iter_bytes() if encoded else response.iter_raw()
                with self._body_errors(label, partial):
                    for chunk in chunks:
                        partial.write(chunk)
                if total is not None and partial.done < total:
                    raise TransientSourceError(
                        f"GET {label} ended after {partial.done} of {total} announced bytes "
                        "(truncated download)", kind="truncated")

        try:
            with_retries(self.limits, attempt)
        except BaseException:
            if state["partial"] is not None:
                state["partial"].discard()
            raise
        partial = state["partial"]
        assert partial is not None
        return partial.finish(declared_media_type=state["declared"])

    # -- requests and redirects -----------------------------------------------------------
    def _send_following(self, url: str, headers: Mapping[str, str],
                        ) -> tuple[httpx.Response, str]:
        """Send GET, following redirects one checked hop at a time: (response, final URL)."""
        chain = [url]
        while True:
            current = chain[-1]
            response = self._send(current, headers, chain)
            location = response.headers.get("location")
            if response.status_code not in REDIRECT_STATUSES or not location:
                return response, current
            response.close()
            try:
                target = str(httpx.URL(current).join(location))
            except httpx.InvalidURL:
                raise UnsafeSourceError(
                    f"{redact_url(current)} redirects to an invalid URL; use the final "
                    "download URL") from None
            if urlsplit(target).scheme not in ("http", "https"):
                raise UnsafeSourceError(
                    f"{redact_url(current)} redirects to a {urlsplit(target).scheme}: URL, "
                    "which acquire does not follow; use the final download URL")
            if target in chain:
                hops = " -> ".join(redact_url(u) for u in [*chain, target])
                raise RedirectLoopError(
                    f"redirect loop: {hops}; the server sends requests in a circle, so fix "
                    "the server or use the final download URL")
            if len(chain) > self.limits.max_redirects:
                raise RedirectLoopError(
                    f"{redact_url(url)} redirects more than {self.limits.max_redirects} times "
                    "(MLMESH_ACQUIRE_MAX_REDIRECTS); use the final download URL")
            chain.append(target)

    def _send(self, url: str, headers: Mapping[str, str], chain: list[str]) -> httpx.Response:
        sent = dict(headers)
        if self.credentials is not None and self.credentials.applies_to(url):
            sent.update(self.credentials.headers)
        label = redact_url(url)
        try:
            request = self._client.build_request("GET", url, headers=sent)
            return self._client.send(request, stream=True)
        except UnsafeSourceError as exc:
            where = (f"{label} refused" if len(chain) == 1 else
                     f"redirect from {redact_url(chain[-2])} to {label} refused")
            raise UnsafeSourceError(f"{where}: {exc}") from None
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise UnsupportedSourceError(f"cannot fetch {label}: {exc}; check the URL") from None
        except httpx.ConnectTimeout:
            raise TransientSourceError(
                f"connecting to {_host_port(url)} timed out after "
                f"{self.limits.connect_timeout_s:g} s; the host is down or unreachable",
                kind="connect") from None
        except httpx.ConnectError as exc:
            raise TransientSourceError(f"cannot connect to {_host_port(url)} ({exc}); the "
                                       "host is down or unreachable", kind="connect") from None
        except httpx.ReadTimeout:
            raise TransientSourceError(
                f"GET {label} sent no response within {self.limits.read_timeout_s:g} s "
                "(MLMESH_ACQUIRE_READ_TIMEOUT_S)", kind="timeout") from None
        except httpx.TransportError as exc:
            raise TransientSourceError(
                f"GET {label}: the connection broke before a response "
                f"({type(exc).__name__}: {exc})", kind="broken") from None

    def _check_status(self, response: httpx.Response, url: str, final: str) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        label = redact_url(url)
        if final != url:
            label += f" (redirected to {redact_url(final)})"
        phrase = f"HTTP {status} {response.reason_phrase}".rstrip()
        if status >= 500 or status in RETRYABLE_CLIENT_STATUSES:
            raise TransientSourceError(
                f"GET {label} answered {phrase}; the host is failing or throttling, try "
                "again later", status, retry_after_s=_retry_after(response))
        if 300 <= status < 400:
            raise SourceNotFoundError(
                f"GET {label} answered {phrase} without a Location to follow; use the final "
                "download URL", status=status)
        hint = ("the file does not exist there; check the URL" if status in (404, 410) else
                "access is refused; check the URL and any credentials it needs")
        raise SourceNotFoundError(f"GET {label} answered {phrase}: {hint}", status=status)

    # -- bodies -----------------------------------------------------------------------------
    def _read_all(self, response: httpx.Response, label: str, cap: int) -> bytes:
        _set_body_read_timeout(response, self.limits.stall_timeout_s)
        parts: list[bytes] = []
        size = 0
        with self._body_errors(label, None):
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > cap:
                    raise SourceError(f"GET {label} answered more than {cap} bytes where a "
                                      "small JSON document was expected; check the endpoint")
                parts.append(chunk)
        return b"".join(parts)

    @contextmanager
    def _body_errors(self, label: str, partial: PartialFile | None) -> Iterator[None]:
        """Turn a read timeout mid-body into a stall, other transport errors into a break."""
        try:
            yield
        except httpx.TransportError as exc:
            got = ""
            if partial is not None:
                total = partial.total if partial.total is not None else "an unknown number of"
                got = f" after {partial.done} of {total} bytes"
            if isinstance(exc, httpx.ReadTimeout):
                raise TransientSourceError(
                    f"GET {label} stalled: no bytes for {self.limits.stall_timeout_s:g} s{got} "
                    "(MLMESH_ACQUIRE_STALL_TIMEOUT_S); the host is stuck or too slow",
                    kind="stall") from None
            raise TransientSourceError(
                f"GET {label} broke off{got} ({type(exc).__name__}: {exc}); truncated "
                "download", kind="truncated") from None


def _set_body_read_timeout(response: httpx.Response, seconds: float) -> None:
    """Bound the pause between body bytes by the stall timeout.

    httpx has one read timeout per request, taken from the request's ``timeout``
    extension when the body starts to stream; the headers were awaited with the (longer)
    read timeout, the body is read with the stall timeout.
    """
    timeouts = response.request.extensions.get("timeout")
    if isinstance(timeouts, dict):
        timeouts["read"] = seconds


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _content_range(response: httpx.Response) -> tuple[int | None, int | None, int | None]:
    match = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
    star = re.match(r"bytes\s+\*/(\d+)", response.headers.get("content-range", ""), re.I)
    if match:
        total = None if match.group(3) == "*" else int(match.group(3))
        return int(match.group(1)), int(match.group(2)), total
    if star:
        return None, None, int(star.group(1))
    return None, None, None


def _validator(response: httpx.Response) -> str | None:
    """What ``If-Range`` may carry to resume safely: a strong ETag, else Last-Modified."""
    etag = response.headers.get("etag")
    if etag and not etag.startswith("W/"):
        return etag
    modified = response.headers.get("last-modified")
    if modified:
        try:
            parsedate_to_datetime(modified)
        except (TypeError, ValueError):
            return None
        return modified
    return None


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "").strip()
    if value.isdigit():
        return float(value)
    return None


def _http_filename(response: httpx.Response, url: str) -> str:
    disposition = response.headers.get("content-disposition")
    if disposition:
        msg = Message()
        msg["content-disposition"] = disposition
        name = msg.get_filename()
        if name:
            return name
    # After redirects the final URL usually carries the real file name.
    return unquote(urlsplit(url).path).rsplit("/", 1)[-1]


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc.rpartition("@")[2] or "the host"


@register_source
class HttpSource(Source):
    """``http://`` and ``https://`` URLs of a data file."""

    schemes = ("http", "https")

    def fetch(self, uri: str, ctx: FetchContext) -> FetchedFile:
        if not urlsplit(uri).hostname:
            raise UnsupportedSourceError(f"{redact_url(uri)!r} names no host; give a full "
                                         "URL such as https://host/path/data.csv")
        with HttpSession(ctx) as session:
            fetched = session.download(uri, ctx.dest_dir)
        return replace(fetched, metadata={"source": "http", "url": redact_url(uri)})
