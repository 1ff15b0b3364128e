"""The gateway's security wiring, shared by REST and gRPC: key verification, rate limits,
key management, the audit log and the request size limit."""

from __future__ import annotations

import logging

from mlmesh_common import apikeys
from mlmesh_common.runtime import Service
from mlmesh_gateway.auth import Authenticator, Principal, RateLimiter
from mlmesh_gateway.keys import Audit, Keys

log = logging.getLogger("mlmesh.gateway.security")
#: Acts for the gateway itself (bootstrap, tests): every project, admin.
SYSTEM = Principal("system", "system", "admin", (apikeys.ALL_PROJECTS,))


class Security:
    """One per gateway process; REST and gRPC share it (one cache, one set of buckets)."""

    def __init__(self, service: Service, bootstrap: bool = True) -> None:
        settings = service.settings
        self.service = service
        self.pepper = apikeys.load_pepper(settings.resolved_home)
        self.authenticator = Authenticator(
            lambda: service.ledger, self.pepper,
            RateLimiter(settings.api_rate_per_s, settings.api_rate_burst),
            settings.api_key_cache_s)
        self.keys = Keys(lambda: service.ledger, self.pepper)
        self.audit = Audit(lambda: service.ledger)
        self.max_body_bytes = settings.api_max_body_bytes
        if bootstrap and (key := apikeys.bootstrap_admin_key(settings.resolved_home)):
            try:
                self.keys.bootstrap(key)
            except apikeys.InvalidApiKey as exc:
                raise SystemExit(f"MLMESH_ADMIN_API_KEY is not usable: {exc}") from exc

    async def mint(self, role: str, projects: list[str], name: str = "") -> str:
        """Create a key as the gateway itself (tests, tooling); returns the key."""
        _, key = await self.keys.create(SYSTEM, name or f"{role} key", role, projects)
        return key
