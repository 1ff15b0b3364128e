"""API key management (create, list, revoke, bootstrap) and the audit log."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from mlmesh_common import apikeys
from mlmesh_common.ledger import ApiKeyRecord, AuditRecord, Ledger
from mlmesh_gateway.auth import Principal

log = logging.getLogger("mlmesh.gateway.keys")
NAME_MAX = 100


class InvalidKeyRequest(ValueError):
    """The key cannot be created as asked; the message says what to change."""


class KeyNotFound(KeyError):
    """No active key with that id is visible to the caller."""


def key_dict(record: ApiKeyRecord, key: str = "") -> dict:
    """A key for the API (never its digest); `key` only right after creation."""
    out = {"id": record.id, "name": record.name, "role": record.role,
           "projects": list(record.projects), "created_at": record.created_at,
           "created_by": record.created_by, "revoked_at": record.revoked_at}
    if key:
        out["key"] = key
    return out


def audit_dict(record: AuditRecord) -> dict:
    return {"id": record.id, "at": record.at, "key_id": record.key_id, "role": record.role,
            "action": record.action, "target": record.target, "project": record.project,
            "outcome": record.outcome, "status_code": record.status_code,
            "detail": record.detail}


class Keys:
    """Keys in the ledger: only digests are stored; the key is shown once, at creation."""

    def __init__(self, ledger_of: Callable[[], Ledger], pepper: bytes) -> None:
        self._ledger_of = ledger_of
        self.pepper = pepper

    @property
    def ledger(self) -> Ledger:
        return self._ledger_of()

    async def create(self, who: Principal, name: str, role: str, projects: list[str],
                     ) -> tuple[ApiKeyRecord, str]:
        """A new key within the creator's own scope; returns (record, the key itself)."""
        who.require("keys.manage")
        if role not in apikeys.ROLES:
            raise InvalidKeyRequest(f"role {role!r} is not one of {', '.join(apikeys.ROLES)}")
        projects = sorted({p.strip() for p in projects if p.strip()})
        if not projects:
            raise InvalidKeyRequest("give at least one project (or '*' for every project)")
        if any(len(p) > 200 or not p.isprintable() for p in projects):
            raise InvalidKeyRequest("project names are printable and at most 200 characters")
        if not who.covers(projects):
            raise InvalidKeyRequest(f"your key is scoped to {', '.join(who.projects)}; a key "
                                    "you create must stay within that scope")
        if not name.isprintable() or len(name) > NAME_MAX:
            raise InvalidKeyRequest(f"name must be printable and at most {NAME_MAX} characters")
        key_id, key = apikeys.generate()
        record = ApiKeyRecord(id=key_id, name=name, role=role, projects=projects,
                              digest=apikeys.digest(self.pepper, key), created_at=time.time(),
                              created_by=who.key_id)
        if not await asyncio.to_thread(self.ledger.add_api_key, record):
            raise InvalidKeyRequest("key id collision; try again")
        return record, key

    async def list(self, who: Principal, include_revoked: bool = False) -> list[ApiKeyRecord]:
        """Keys whose whole scope lies within the caller's."""
        who.require("keys.manage")
        records = await asyncio.to_thread(self.ledger.list_api_keys, include_revoked)
        return [r for r in records if who.covers(list(r.projects))]

    async def revoke(self, who: Principal, key_id: str) -> ApiKeyRecord:
        """Revoke a key within the caller's scope (404 for others)."""
        who.require("keys.manage")
        record = await asyncio.to_thread(self.ledger.get_api_key, key_id)
        if (record is None or record.revoked_at is not None
                or not who.covers(list(record.projects))):
            raise KeyNotFound(key_id)
        await asyncio.to_thread(self.ledger.revoke_api_key, key_id)
        revoked = await asyncio.to_thread(self.ledger.get_api_key, key_id)
        assert revoked is not None
        return revoked

    def bootstrap(self, key: str) -> str:
        """Install `key` as an admin key of every project (idempotent); returns its id."""
        key_id = apikeys.key_id_of(key)
        existing = self.ledger.get_api_key(key_id)
        if existing is None:
            self.ledger.add_api_key(ApiKeyRecord(
                id=key_id, name="bootstrap admin", role="admin",
                projects=[apikeys.ALL_PROJECTS], digest=apikeys.digest(self.pepper, key),
                created_at=time.time(), created_by="bootstrap"))
            log.info("bootstrap admin key %s installed", key_id)
        elif not apikeys.matches(self.pepper, key, existing.digest):
            log.error("bootstrap admin key %s does not match the stored digest (was the "
                      "pepper changed?); it will not authenticate", key_id)
        elif existing.revoked_at is not None:
            log.warning("bootstrap admin key %s is revoked; set a new MLMESH_ADMIN_API_KEY",
                        key_id)
        return key_id


class Audit:
    """The audit log: every write through REST or gRPC, with its outcome."""

    def __init__(self, ledger_of: Callable[[], Ledger]) -> None:
        self._ledger_of = ledger_of

    @property
    def ledger(self) -> Ledger:
        return self._ledger_of()

    def record(self, who: Principal | None, action: str, target: str, project: str,
               status_code: int, detail: str = "") -> None:
        outcome = ("ok" if status_code < 400
                   else "denied" if status_code in (401, 403, 404, 413, 429)
                   else "rejected" if status_code < 500 else "error")
        self.ledger.record_audit(AuditRecord(
            id=0, at=time.time(), key_id=who.key_id if who else "", role=who.role if who else "",
            action=action, target=apikeys.redact(target)[:500], project=project,
            outcome=outcome, status_code=status_code, detail=apikeys.redact(detail)[:500]))

    async def list(self, who: Principal, key_id: str = "", action: str = "",
                   since: float = 0.0, limit: int = 100) -> list[AuditRecord]:
        who.require("audit.read")
        return await asyncio.to_thread(self.ledger.list_audit, projects=who.scope(),
                                       key_id=key_id, action=action, since=since,
                                       limit=min(max(limit, 1), 1000))
