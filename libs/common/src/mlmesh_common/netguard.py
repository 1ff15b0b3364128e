"""Outbound network guard (SSRF): which addresses a service may connect to, enforced where
the TCP connection is made, plus URL redaction for logs and messages.

Loopback, private (RFC 1918, IPv6 ULA), link-local, shared (CGNAT), multicast, unspecified
and reserved addresses are refused unless the operator allows them (``allow_private``, or
``allowed_hosts`` naming host names, ``*.suffix`` patterns, addresses or CIDR ranges). Cloud
metadata endpoints stay refused even with ``allow_private``; only an explicit allowed-hosts
entry opens them. :func:`guarded_client` plugs the check into httpx's connection pool: the
name is resolved once, every address is checked, and the socket connects to a checked
address, so DNS rebinding cannot swap in an internal one. Redirects are not followed by the
client: callers follow them hop by hop, each hop passing the same check.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

import httpcore
import httpx

from mlmesh_common.errors import PermanentError, TransientError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Host names of cloud metadata services (instance credentials live there).
METADATA_HOSTS = frozenset({
    "metadata", "metadata.google.internal", "metadata.goog", "instance-data",
    "instance-data.ec2.internal", "metadata.azure.internal", "metadata.platformequinix.com",
})
#: Addresses of cloud metadata services (AWS, GCP, Azure, ECS, Alibaba, AWS IPv6).
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254",
))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
#: Query keys whose values are kept by :func:`redact_url` (they identify, not authorise).
_HARMLESS_QUERY_KEYS = frozenset({
    "id", "version", "datasetversionnumber", "format", "revision", "config", "split", "name",
})
#: Kinds that ``allow_private`` opens; the others need an explicit allowed-hosts entry.
_PRIVATE_KINDS = frozenset({"loopback", "private", "link-local",
                            "non-public (shared or special-purpose)"})


class DestinationRefused(PermanentError):
    """The destination is an address the policy refuses (SSRF guard)."""


class UnknownHost(PermanentError):
    """The host name does not resolve."""


class TransientResolveError(TransientError):
    """The resolver failed for now."""


@dataclass(frozen=True)
class GuardErrors:
    """The exception classes a caller wants the guard to raise (its own domain errors)."""

    refused: Callable[[str], Exception] = DestinationRefused
    unknown_host: Callable[[str], Exception] = UnknownHost
    transient: Callable[[str], Exception] = TransientResolveError


def redact_url(url: str) -> str:
    """``url`` without user info, query values (other than a few harmless ones) or fragment."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<an unparseable URL>"
    netloc = parts.netloc.rpartition("@")[2]
    query = "&".join(
        f"{quote(key, safe='')}="
        + (quote(value, safe='') if key.lower() in _HARMLESS_QUERY_KEYS else "REDACTED")
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    if parts.query and not query:
        query = "REDACTED"
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def address_kind(ip: IPAddress) -> str | None:
    """``None`` for a public address, otherwise what kind of non-public address it is."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return address_kind(ip.ipv4_mapped)
        if ip in _NAT64:
            return address_kind(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip.sixtofour is not None and address_kind(ip.sixtofour) is not None:
            return "6to4-wrapped non-public"
    if ip in METADATA_ADDRESSES:
        return "cloud metadata"
    for kind, flag in (("unspecified", ip.is_unspecified), ("loopback", ip.is_loopback),
                       ("link-local", ip.is_link_local), ("multicast", ip.is_multicast),
                       ("private", ip.is_private), ("reserved", ip.is_reserved)):
        if flag:
            return kind
    if not ip.is_global:
        return "non-public (shared or special-purpose)"
    return None


@dataclass(frozen=True)
class NetworkPolicy:
    """Which hosts and addresses may be connected to.

    ``settings_prefix`` names the operator's knobs in messages (e.g. MLMESH_ACQUIRE gives
    MLMESH_ACQUIRE_ALLOWED_HOSTS / MLMESH_ACQUIRE_ALLOW_PRIVATE).
    """

    allow_private: bool = False
    #: Host names (exact, lower case) or ``*.suffix`` patterns that are always allowed.
    allowed_names: tuple[str, ...] = ()
    #: Address ranges that are always allowed.
    allowed_networks: tuple[IPNetwork, ...] = ()
    settings_prefix: str = "MLMESH"
    purpose: str = "this service"
    errors: GuardErrors = field(default_factory=GuardErrors)

    @classmethod
    def parse(cls, allow_private: bool = False, allowed_hosts: str = "", **kw: Any,
              ) -> NetworkPolicy:
        """A policy from the two settings (``allowed_hosts``: comma-separated entries)."""
        names: list[str] = []
        networks: list[IPNetwork] = []
        for raw in allowed_hosts.split(","):
            entry = raw.strip().lower().rstrip(".")
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                names.append(entry)
        return cls(bool(allow_private), tuple(names), tuple(networks), **kw)

    def trusting(self, *hosts: str) -> NetworkPolicy:
        """This policy plus ``hosts`` (operator-configured endpoints)."""
        more = NetworkPolicy.parse(allowed_hosts=",".join(h for h in hosts if h))
        return replace(self, allowed_names=self.allowed_names + more.allowed_names,
                       allowed_networks=self.allowed_networks + more.allowed_networks)

    def check_url(self, url: str) -> None:
        """Refuse a URL whose host is not allowed (resolving it now)."""
        parts = urlsplit(url)
        if not parts.hostname:
            raise self.errors.refused(f"{redact_url(url)!r} has no host name")
        self.vet(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))

    def vet(self, host: str, port: int) -> list[str]:
        """The addresses of ``host`` to connect to, every one of them allowed."""
        name = host.strip("[]").lower().rstrip(".")
        literal = _parse_ip(name)
        if literal is None and self._name_allowed(name):
            return [str(ip) for ip in self._resolve(name, port)]
        if literal is None and name in METADATA_HOSTS:
            raise self.errors.refused(
                f"host {name!r} is a cloud metadata service; {self.purpose} never connects "
                "to it")
        addresses = [literal] if literal is not None else self._resolve(name, port)
        for ip in addresses:
            self._check_address(name, ip)
        return [str(ip) for ip in addresses]

    def _name_allowed(self, name: str) -> bool:
        return any(name == entry or (entry.startswith("*.") and name.endswith(entry[1:]))
                   for entry in self.allowed_names)

    def _check_address(self, name: str, ip: IPAddress) -> None:
        kind = address_kind(ip)
        if kind is None or any(ip in net for net in self.allowed_networks
                               if net.version == ip.version):
            return
        if self.allow_private and kind in _PRIVATE_KINDS:
            return
        shown = f"{name!r} resolves to {ip}" if name != str(ip) else f"address {ip}"
        hosts = f"{self.settings_prefix}_ALLOWED_HOSTS"
        if kind == "cloud metadata":
            fix = (f"{self.purpose} never connects to it unless {hosts} names it explicitly")
        else:
            fix = (f"{self.purpose} refuses such addresses to protect internal services "
                   f"(SSRF); if this is a trusted server, add its host name or network to "
                   f"{hosts} or set {self.settings_prefix}_ALLOW_PRIVATE=true")
        article = "an" if kind[0] in "aeiou" else "a"
        raise self.errors.refused(f"{shown}, {article} {kind} address: {fix}")

    def _resolve(self, name: str, port: int) -> list[IPAddress]:
        try:
            infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            if exc.errno in (socket.EAI_AGAIN,):
                raise self.errors.transient(
                    f"cannot resolve host {name!r} right now ({exc.strerror}); try again "
                    "later") from None
            raise self.errors.unknown_host(
                f"host {name!r} does not resolve ({exc.strerror}); check the URL") from None
        seen: list[IPAddress] = []
        for info in infos:
            ip = _parse_ip(str(info[4][0]))
            if ip is not None and ip not in seen:
                seen.append(ip)
        if not seen:
            raise self.errors.unknown_host(f"host {name!r} has no address; check the URL")
        return seen


def _parse_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


class _GuardedBackend(httpcore.NetworkBackend):
    """Connects only to addresses the policy allows, to exactly the address it checked."""

    def __init__(self, policy: NetworkPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:
        last: Exception | None = None
        for address in self._policy.vet(host, port):
            try:
                return self._inner.connect_tcp(address, port, timeout=timeout,
                                               local_address=local_address,
                                               socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Any = None) -> httpcore.NetworkStream:
        raise self._policy.errors.refused("unix sockets are not allowed destinations")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _GuardedTransport(httpx.HTTPTransport):
    def __init__(self, policy: NetworkPolicy) -> None:
        super().__init__(trust_env=False)
        # Same pool httpx would build, with the guarded network backend plugged in.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=20, max_keepalive_connections=10, keepalive_expiry=5.0,
            network_backend=_GuardedBackend(policy))


def guarded_client(policy: NetworkPolicy, timeout: httpx.Timeout,
                   headers: dict[str, str] | None = None) -> httpx.Client:
    """An httpx client whose every connection passes ``policy``; redirects are not followed,
    no environment proxies or ``.netrc``."""
    return httpx.Client(transport=_GuardedTransport(policy), timeout=timeout,
                        follow_redirects=False, trust_env=False, headers=headers or {})
