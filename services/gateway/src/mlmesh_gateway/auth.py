"""Who is calling and what they may do: API key verification, roles, project scope, rate
limits (no HTTP or gRPC here; both front ends translate these errors)."""

from __future__ import annotations

import contextvars
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlmesh_common import apikeys
from mlmesh_common.ledger import ApiKeyRecord, Ledger

#: Permission -> the weakest role holding it (roles are ordered in apikeys.ROLES).
PERMISSIONS = {
    "experiments.read": "viewer", "artifacts.read": "viewer", "webhooks.read": "viewer",
    "dlq.read": "viewer", "ops.read": "viewer",
    "experiments.submit": "scientist", "experiments.cancel": "scientist",
    "webhooks.write": "scientist",
    "dlq.write": "admin", "keys.manage": "admin", "audit.read": "admin",
}


class Unauthenticated(Exception):
    """No key, or a key that is unknown, malformed or revoked (HTTP 401)."""


class Forbidden(Exception):
    """The key's role does not allow the action (HTTP 403)."""


class RateLimited(Exception):
    """The key (or client) sent more requests than allowed; retry after `retry_after_s`."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"rate limit exceeded; retry after {retry_after_s:.0f}s")
        self.retry_after_s = retry_after_s


class ProjectNotFound(KeyError):
    """The project is not visible to the key (answered like a missing object: 404)."""


@dataclass(frozen=True)
class Principal:
    """The verified caller: a key's id, name, role and project scope."""

    key_id: str
    name: str
    role: str
    projects: tuple[str, ...]

    @property
    def all_projects(self) -> bool:
        return apikeys.ALL_PROJECTS in self.projects

    def has(self, permission: str) -> bool:
        """True when the role holds `permission`."""
        needed = PERMISSIONS[permission]
        return apikeys.ROLES.index(self.role) >= apikeys.ROLES.index(needed)

    def require(self, permission: str) -> None:
        if not self.has(permission):
            raise Forbidden(f"a {self.role} key may not do {permission}; ask an admin for a "
                            f"key with the {PERMISSIONS[permission]} role")

    def sees(self, project: str) -> bool:
        """True when `project` is in the key's scope."""
        return self.all_projects or project in self.projects

    def scope(self) -> list[str] | None:
        """The projects to filter by, or None for every project."""
        return None if self.all_projects else list(self.projects)

    def covers(self, projects: list[str]) -> bool:
        """True when every project in `projects` (possibly '*') is within this key's scope."""
        if self.all_projects:
            return True
        return apikeys.ALL_PROJECTS not in projects and set(projects) <= set(self.projects)


def principal_of(record: ApiKeyRecord) -> Principal:
    return Principal(record.id, record.name, record.role, tuple(record.projects))


class RateLimiter:
    """Token buckets per caller: `rate_per_s` sustained, `burst` at once."""

    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic,
                 ) -> None:
        self.rate = max(rate_per_s, 1e-6)
        self.burst = max(burst, 1)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, caller: str) -> None:
        """Spend one token of `caller`; raises RateLimited when none is left."""
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.get(caller, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[caller] = (tokens, now)
                raise RateLimited(max(1.0, math.ceil((1.0 - tokens) / self.rate)))
            self._buckets[caller] = (tokens - 1.0, now)
            if len(self._buckets) > 10_000:  # forget idle callers (full buckets)
                full = [k for k, (t, seen) in self._buckets.items()
                        if t + (now - seen) * self.rate >= self.burst]
                for k in full:
                    del self._buckets[k]


@dataclass
class Authenticator:
    """Verifies API keys against the ledger (with a short cache) and applies rate limits."""

    ledger_of: Callable[[], Ledger]
    pepper: bytes
    limiter: RateLimiter
    cache_s: float = 5.0
    _cache: dict[str, tuple[Principal, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def verify(self, key: str) -> Principal:
        """The principal of `key`; raises Unauthenticated (the message never echoes the key)."""
        if not key:
            raise Unauthenticated("send an API key: 'Authorization: Bearer <key>' or "
                                  "'x-api-key: <key>' (gRPC: the same metadata)")
        try:
            key_id = apikeys.key_id_of(key)
        except apikeys.InvalidApiKey as exc:
            raise Unauthenticated(f"the API key is malformed: {exc}") from None
        digest = apikeys.digest(self.pepper, key)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(digest)
        if cached is not None and cached[1] > now:
            return cached[0]
        record = self.ledger_of().get_api_key(key_id)
        if record is None or not apikeys.matches(self.pepper, key, record.digest):
            raise Unauthenticated("the API key is not known; create one with "
                                  "`mlmesh keys create` or ask an admin")
        if record.revoked_at is not None:
            raise Unauthenticated(f"API key {key_id} was revoked; ask an admin for a new one")
        principal = principal_of(record)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (principal, now + self.cache_s)
        return principal

    def forget(self, key_id: str) -> None:
        """Drop cached verifications of `key_id` (after a revocation on this replica)."""
        with self._lock:
            for digest in [d for d, (p, _) in self._cache.items() if p.key_id == key_id]:
                del self._cache[digest]

    def cached(self, key: str) -> Principal | None:
        """The principal of `key` when verified recently (no ledger read), else None."""
        try:
            digest = apikeys.digest(self.pepper, key)
        except (AttributeError, TypeError):
            return None
        with self._lock:
            hit = self._cache.get(digest)
        return hit[0] if hit is not None and hit[1] > time.monotonic() else None

    def authenticate(self, key: str, client: str = "") -> Principal:
        """Verify and rate-limit one request: per key, and per client address on failures."""
        principal = self.cached(key) if key else None
        if principal is None:
            try:
                principal = self.verify(key)
            except Unauthenticated:
                self.limiter.take(f"client:{client}")
                raise
        self.limiter.take(f"key:{principal.key_id}")
        return principal


def key_from_headers(get: Callable[[str], str | None]) -> str:
    """The key from 'authorization: Bearer <key>' or 'x-api-key: <key>'."""
    auth = (get("authorization") or "").strip()
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return (get("x-api-key") or "").strip()


#: What the current request did, for its audit entry (set by the front ends, filled in by
#: the application layer).
audit_note: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "audit_note", default=None)


def note(**fields: Any) -> None:
    """Record the action, target and project of the current request for the audit log."""
    current = audit_note.get()
    if current is not None:
        current.update({k: v for k, v in fields.items() if v is not None})
