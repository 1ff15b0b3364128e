"""Network safety for acquire: the SSRF guard, size and time limits, and URL redaction.

SSRF guard
    :class:`NetworkPolicy` decides which addresses acquire may connect to. Loopback,
    private (RFC 1918, IPv6 ULA), link-local, shared (CGNAT), multicast, unspecified and
    reserved addresses are refused unless the operator allows them
    (``MLMESH_ACQUIRE_ALLOW_PRIVATE=true``, or ``MLMESH_ACQUIRE_ALLOWED_HOSTS`` naming host
    names, ``*.suffix`` patterns, addresses or CIDR ranges). Cloud metadata endpoints
    (``169.254.169.254``, ``metadata.google.internal`` and the like) stay refused even with
    ``ALLOW_PRIVATE``; only an explicit ``ALLOWED_HOSTS`` entry opens them.

    The check runs where the TCP connection is made (:func:`guarded_client` plugs a network
    backend into httpx's connection pool): the host name is resolved once, every address
    it resolves to is checked, and the socket connects to one of those checked addresses.
    The name is not resolved again between the check and the connection, so DNS rebinding
    cannot swap in an internal address. TLS still verifies the certificate against the
    host name. Redirects are followed by the caller one hop at a time, so every hop passes
    through the same check. Environment proxies and ``.netrc`` are not used.

Limits
    :class:`FetchLimits` bounds the size of a download, the connect and read timeouts, the
    stall timeout (no bytes for that long mid-transfer), redirects, and the retries.

Redaction
    :func:`redact_url` strips user info and query values from URLs before they reach a
    message, a log line, an event or ``source.json``; a filter on the ``httpx`` logger does
    the same for httpx's own request log.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

import httpx

from mlmesh_acquire.source_errors import (
    SourceNotFoundError,
    SourceTooLargeError,
    TransientSourceError,
    UnsafeSourceError,
)
from mlmesh_common import netguard
from mlmesh_common.netguard import GuardErrors, address_kind, redact_url

__all__ = ["FetchLimits", "NetworkPolicy", "SecretScrubber", "address_kind", "guarded_client",
           "redact_url"]

USER_AGENT = "mlmesh-acquire/0.1"


def _transient_connect(message: str) -> TransientSourceError:
    return TransientSourceError(message, kind="connect")


_ERRORS = GuardErrors(refused=UnsafeSourceError, unknown_host=SourceNotFoundError,
                      transient=_transient_connect)


@dataclass(frozen=True)
class NetworkPolicy(netguard.NetworkPolicy):
    """The shared SSRF guard (mlmesh_common.netguard) with acquire's settings and errors."""

    settings_prefix: str = "MLMESH_ACQUIRE"
    purpose: str = "acquire"
    errors: GuardErrors = field(default_factory=lambda: _ERRORS)

    @classmethod
    def from_settings(cls, settings: Any) -> NetworkPolicy:
        """The policy configured by ``acquire_allow_private`` / ``acquire_allowed_hosts``."""
        return cls.parse(getattr(settings, "acquire_allow_private", False),
                         getattr(settings, "acquire_allowed_hosts", "") or "")


@dataclass(frozen=True)
class FetchLimits:
    """Size, time and retry bounds for one fetch."""

    max_bytes: int = 10 * 1024**3
    connect_timeout_s: float = 10.0
    #: Longest wait for a response's headers (an API building a file may think a while).
    read_timeout_s: float = 60.0
    #: Longest pause without a byte once the body is flowing.
    stall_timeout_s: float = 60.0
    max_redirects: int = 10
    #: Tries per request, the first included (a broken download resumes where it stopped).
    attempts: int = 4
    retry_initial_s: float = 1.0
    retry_max_s: float = 30.0

    @classmethod
    def from_settings(cls, settings: Any) -> FetchLimits:
        """Limits from the ``acquire_*`` settings, defaults for any that are missing."""
        defaults = cls()
        values = {name: getattr(settings, f"acquire_{name}", getattr(defaults, name))
                  for name in cls.__dataclass_fields__}
        return cls(**values)

    def timeout(self) -> httpx.Timeout:
        """The httpx timeout for a request (the body's read timeout is set per response)."""
        return httpx.Timeout(connect=self.connect_timeout_s, read=self.read_timeout_s,
                             write=self.read_timeout_s, pool=self.connect_timeout_s)

    def check_size(self, size: int | None, label: str) -> None:
        """Raise SourceTooLargeError when ``size`` is over ``max_bytes``."""
        if size is not None and size > self.max_bytes:
            raise SourceTooLargeError(
                f"{label} is {size} bytes, over the {self.max_bytes}-byte limit "
                "(MLMESH_ACQUIRE_MAX_BYTES); raise the limit or give a smaller extract")


def guarded_client(policy: NetworkPolicy, limits: FetchLimits) -> httpx.Client:
    """An httpx client whose every connection passes ``policy``; redirects are not followed
    (the caller follows them hop by hop), no environment proxies or ``.netrc``."""
    return netguard.guarded_client(policy, limits.timeout(),
                                   {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})


# -- keep URLs with tokens and header values out of httpx's and httpcore's logs ---------------

_URL_IN_TEXT = re.compile(r"https?://[^\s'\"<>]+")
_HEADER_LIST = re.compile(r"\[\(b'.*\)\]", re.S)


class _RedactUrlsFilter(logging.Filter):
    """httpx logs each request's URL (query included): redact it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_url(str(a)) if isinstance(a, httpx.URL) else a
                                for a in record.args)
        return True


class _HideHeadersFilter(logging.Filter):
    """httpcore's DEBUG trace prints response headers (signed Location URLs, cookies):
    drop the header lists and redact any URL."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = _HEADER_LIST.sub("[headers hidden]", message)
        cleaned = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), cleaned)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


logging.getLogger("httpx").addFilter(_RedactUrlsFilter())
for _name in ("httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy",
              "httpcore.socks"):
    logging.getLogger(_name).addFilter(_HideHeadersFilter())


@dataclass(frozen=True)
class SecretScrubber:
    """Replaces known secret values in free text (an API's error message, say)."""

    secrets: tuple[str, ...] = field(default_factory=tuple)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret and len(secret) >= 4:
                text = text.replace(secret, "REDACTED")
        return text
