"""Webhooks: per-project subscriptions; events delivered as CloudEvents 1.0 JSON signed per
Standard Webhooks (HMAC-SHA256), with retries, a delivery log and dead-lettering."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import os
import random
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from mlmesh_common.errors import PermanentError
from mlmesh_common.ledger import DeliveryRecord, Ledger, WebhookRecord
from mlmesh_common.runtime import Service

log = logging.getLogger("mlmesh.gateway.webhooks")

#: Event types a project can subscribe to.
SUBSCRIBABLE = ("mlmesh.experiment.completed", "mlmesh.experiment.failed",
                "mlmesh.model.published", "mlmesh.drift.detected")
MAX_ATTEMPTS = int(os.environ.get("MLMESH_WEBHOOK_MAX_ATTEMPTS", "6"))
BACKOFF_INITIAL_S = float(os.environ.get("MLMESH_WEBHOOK_BACKOFF_S", "2"))
BACKOFF_MAX_S = 600.0
LEASE_S = 60.0


class InvalidWebhook(ValueError):
    """The subscription cannot be accepted; the message says what to change."""


class WebhookNotFound(KeyError):
    """No active webhook has that id."""


def new_secret() -> str:
    """A Standard Webhooks secret: 'whsec_' + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """The webhook-signature header value: 'v1,' + base64 HMAC-SHA256 of id.timestamp.body."""
    digest = hmac.new(_key(secret), f"{message_id}.{timestamp}.{body}".encode(),
                      hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(secret: str, headers: dict[str, str], body: str, tolerance_s: float = 300) -> bool:
    """Check Standard Webhooks headers the way a receiver does (for tests and receivers)."""
    lower = {k.lower(): v for k, v in headers.items()}
    try:
        timestamp = int(lower["webhook-timestamp"])
        expected = sign(secret, lower["webhook-id"], timestamp, body)
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance_s:
        return False
    return any(hmac.compare_digest(expected, candidate)
               for candidate in lower.get("webhook-signature", "").split())


def cloud_event(event_type: str, event_id: str, experiment_id: str, produced_at: float,
                data: dict[str, Any]) -> str:
    """A CloudEvents 1.0 structured-mode JSON body."""
    return json.dumps({
        "specversion": "1.0", "type": event_type, "source": "/mlmesh/gateway",
        "id": event_id, "subject": experiment_id,
        "time": datetime.fromtimestamp(produced_at, UTC).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json", "data": data}, sort_keys=True)


def backoff_s(attempts: int) -> float:
    """Wait before attempt number `attempts + 1`: exponential with full jitter."""
    return random.uniform(0.5, 1.0) * min(BACKOFF_MAX_S, BACKOFF_INITIAL_S * 2 ** attempts)


class Webhooks:
    """Subscriptions and their delivery log (one application layer for REST, gRPC, CLI)."""

    def __init__(self, owner: Service | Ledger, check_url: Callable[[str], None]) -> None:
        self._owner = owner
        self.check_url = check_url

    @property
    def ledger(self) -> Ledger:
        return _ledger_of(self._owner)

    async def create(self, project: str, url: str, event_types: list[str],
                     secret: str = "") -> WebhookRecord:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidWebhook(f"url {url!r} must be an absolute http(s) URL")
        if parts.username or parts.password:
            raise InvalidWebhook("put no credentials in the URL: deliveries are signed with "
                                 "the webhook secret")
        unknown = [t for t in event_types if t not in SUBSCRIBABLE]
        if not event_types or unknown:
            raise InvalidWebhook(f"event_types must be a non-empty subset of {SUBSCRIBABLE}"
                                 + (f"; unknown: {unknown}" if unknown else ""))
        if secret and not secret.startswith("whsec_"):
            raise InvalidWebhook("secret must look like whsec_<base64>; omit it to get one")
        try:
            await asyncio.to_thread(self.check_url, url)
        except PermanentError as exc:  # refused or unknown destination
            raise InvalidWebhook(f"url {url!r} is refused: {exc}") from exc
        record = WebhookRecord(id=f"wh_{uuid.uuid4().hex[:16]}", project=project, url=url,
                               event_types=sorted(set(event_types)),
                               secret=secret or new_secret(), created_at=time.time())
        await asyncio.to_thread(self.ledger.add_webhook, record)
        return record

    async def list(self, project: str) -> list[WebhookRecord]:
        return await asyncio.to_thread(self.ledger.list_webhooks, project)

    async def remove(self, webhook_id: str) -> None:
        if not await asyncio.to_thread(self.ledger.remove_webhook, webhook_id):
            raise WebhookNotFound(webhook_id)

    async def deliveries(self, webhook_id: str, limit: int = 100) -> list[DeliveryRecord]:
        if await asyncio.to_thread(self.ledger.get_webhook, webhook_id) is None:
            raise WebhookNotFound(webhook_id)
        return await asyncio.to_thread(self.ledger.list_deliveries, webhook_id, limit)

    def enqueue(self, project: str, event_type: str, event_id: str, body: str) -> int:
        """Queue `body` for every subscription of `project` to `event_type` (idempotent)."""
        now = time.time()
        queued = 0
        for hook in self.ledger.list_webhooks(project, event_type):
            queued += self.ledger.enqueue_delivery(DeliveryRecord(
                id=f"dl_{uuid.uuid4().hex[:16]}", webhook_id=hook.id, event_id=event_id,
                event_type=event_type, body=body, status="pending", attempts=0,
                last_status_code=0, last_error="", next_attempt_at=now, created_at=now,
                updated_at=now))
        return queued


Poster = Callable[[str, dict[str, str], str], int]


def _ledger_of(owner: Service | Ledger) -> Ledger:
    return owner.ledger if isinstance(owner, Service) else owner


class Dispatcher:
    """Delivers due webhook deliveries: sign, POST, log the attempt, retry or dead-letter."""

    def __init__(self, owner: Service | Ledger, post: Poster, poll_s: float = 1.0) -> None:
        self._owner = owner
        self.post = post
        self.poll_s = poll_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    @property
    def ledger(self) -> Ledger:
        return _ledger_of(self._owner)

    def wake(self) -> None:
        self._wake.set()

    def deliver_once(self, delivery: DeliveryRecord) -> str:
        """One attempt; returns the delivery's new status (delivered, pending or dead)."""
        hook = self.ledger.get_webhook(delivery.webhook_id)
        if hook is None:
            self.ledger.record_attempt(delivery.id, status="dead", status_code=0,
                                       error="webhook removed", next_attempt_at=time.time())
            return "dead"
        timestamp = int(time.time())
        headers = {"content-type": "application/cloudevents+json",
                   "webhook-id": delivery.event_id, "webhook-timestamp": str(timestamp),
                   "webhook-signature": sign(hook.secret, delivery.event_id, timestamp,
                                             delivery.body)}
        code, error = 0, ""
        try:
            code = self.post(hook.url, headers, delivery.body)
        except Exception as exc:  # noqa: BLE001 - every failure is logged and retried
            error = f"{type(exc).__name__}: {exc}"
        if 200 <= code < 300:
            status, when = "delivered", time.time()
        elif delivery.attempts + 1 >= MAX_ATTEMPTS:
            status, when = "dead", time.time()
            log.warning("webhook %s: delivery of %s dead after %d attempts (%s)", hook.id,
                        delivery.event_id, delivery.attempts + 1, error or code)
        else:
            status, when = "pending", time.time() + backoff_s(delivery.attempts)
        self.ledger.record_attempt(delivery.id, status=status, status_code=code,
                                   error=error or ("" if status == "delivered" else
                                                   f"HTTP {code}"), next_attempt_at=when)
        return status

    def run_due(self) -> int:
        """Deliver everything that is due now; returns how many attempts were made."""
        made = 0
        for delivery in self.ledger.due_deliveries(time.time()):
            if self.ledger.claim_delivery(delivery.id, LEASE_S):
                self.deliver_once(delivery)
                made += 1
        return made

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="webhook-dispatcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.run_due)
            except Exception:
                log.exception("webhook dispatch failed; retrying")
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_s)
            except TimeoutError:
                pass
            self._wake.clear()
