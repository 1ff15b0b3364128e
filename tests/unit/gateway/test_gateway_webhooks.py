"""Webhook signing, CloudEvents bodies, subscriptions and the dispatcher's retry rules."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from mlmesh_common.ledger import open_ledger
from mlmesh_common.netguard import DestinationRefused
from mlmesh_gateway import webhooks
from mlmesh_gateway.webhooks import (
    Dispatcher,
    InvalidWebhook,
    Webhooks,
    cloud_event,
    new_secret,
    sign,
    verify,
)


def test_signature_round_trip_and_tampering() -> None:
    secret = new_secret()
    body = cloud_event("mlmesh.experiment.completed", "ev1", "x1", 1_700_000_000.0, {"a": 1})
    now = int(time.time())
    headers = {"webhook-id": "ev1", "webhook-timestamp": str(now),
               "webhook-signature": sign(secret, "ev1", now, body)}
    assert verify(secret, headers, body)
    assert not verify(secret, headers, body.replace("1", "2"))
    assert not verify(new_secret(), headers, body)
    assert not verify(secret, {**headers, "webhook-timestamp": str(now - 3600)}, body)


def test_known_signature_vector() -> None:
    # The Standard Webhooks reference example.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = '{"test": 2432232314}'
    assert sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == (
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")


def test_cloud_event_shape() -> None:
    event = json.loads(cloud_event("mlmesh.drift.detected", "e", "x", 0.0, {"k": "v"}))
    assert event["specversion"] == "1.0" and event["type"] == "mlmesh.drift.detected"
    assert event["id"] == "e" and event["subject"] == "x" and event["data"] == {"k": "v"}
    assert event["time"] == "1970-01-01T00:00:00Z"


@pytest.fixture
def hooks(tmp_path: Path) -> Webhooks:
    return Webhooks(open_ledger(f"sqlite:///{tmp_path / 'l.db'}"), check_url=lambda url: None)


@pytest.mark.parametrize("url, types, fix", [
    ("ftp://h/x", ["mlmesh.experiment.completed"], "http"),
    ("https://u:p@h/x", ["mlmesh.experiment.completed"], "credentials"),
    ("https://h/x", [], "subset"),
    ("https://h/x", ["mlmesh.dataset.acquired"], "unknown"),
])
def test_bad_subscriptions_are_explained(hooks: Webhooks, url: str, types: list[str],
                                         fix: str) -> None:
    with pytest.raises(InvalidWebhook, match=fix):
        asyncio.run(hooks.create("p", url, types))


def test_refused_destination_is_not_saved(tmp_path: Path) -> None:
    def refuse(url: str) -> None:
        raise DestinationRefused("10.0.0.1 is a private address")

    hooks = Webhooks(open_ledger(f"sqlite:///{tmp_path / 'l.db'}"), check_url=refuse)
    with pytest.raises(InvalidWebhook, match="private"):
        asyncio.run(hooks.create("p", "https://internal/x", ["mlmesh.experiment.failed"]))
    assert hooks.ledger.list_webhooks("p") == []


def test_dispatcher_retries_then_delivers_and_dead_letters(hooks: Webhooks,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           ) -> None:
    monkeypatch.setattr(webhooks, "BACKOFF_INITIAL_S", 0.0)
    ok = asyncio.run(hooks.create("p", "https://ok.example/x", ["mlmesh.experiment.completed"]))
    dead = asyncio.run(hooks.create("p", "https://down.example/x",
                                    ["mlmesh.experiment.completed"]))
    asyncio.run(hooks.create("other", "https://o.example/x", ["mlmesh.experiment.completed"]))
    body = cloud_event("mlmesh.experiment.completed", "ev1", "x", time.time(), {})
    assert hooks.enqueue("p", "mlmesh.experiment.completed", "ev1", body) == 2
    assert hooks.enqueue("p", "mlmesh.experiment.completed", "ev1", body) == 0, "a redo"
    calls: list[tuple[str, dict]] = []

    def post(url: str, headers: dict[str, str], payload: str) -> int:
        calls.append((url, headers))
        assert verify(ok.secret if "ok." in url else dead.secret, headers, payload)
        if "down" in url:
            raise ConnectionError("refused")
        return 500 if len([c for c in calls if "ok." in c[0]]) == 1 else 204

    dispatcher = Dispatcher(hooks.ledger, post)
    for _ in range(webhooks.MAX_ATTEMPTS + 2):
        dispatcher.run_due()
    [delivered] = hooks.ledger.list_deliveries(ok.id)
    assert delivered.status == "delivered" and delivered.attempts == 2
    assert delivered.last_status_code == 204
    [gave_up] = hooks.ledger.list_deliveries(dead.id)
    assert gave_up.status == "dead" and gave_up.attempts == webhooks.MAX_ATTEMPTS
    assert "ConnectionError" in gave_up.last_error
    assert all("o.example" not in url for url, _ in calls), "other projects get nothing"
