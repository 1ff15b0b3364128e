"""The gateway's outbound HTTP (webhook deliveries): SSRF-guarded, no redirects, bounded."""

from __future__ import annotations

import os
from functools import cache

import httpx

from mlmesh_common.breakers import breaker
from mlmesh_common.netguard import NetworkPolicy, guarded_client


@cache
def policy() -> NetworkPolicy:
    """Webhook destinations: public addresses unless MLMESH_WEBHOOK_ALLOW_PRIVATE /
    MLMESH_WEBHOOK_ALLOWED_HOSTS say otherwise."""
    return NetworkPolicy.parse(
        os.environ.get("MLMESH_WEBHOOK_ALLOW_PRIVATE", "false").lower() in ("1", "true"),
        os.environ.get("MLMESH_WEBHOOK_ALLOWED_HOSTS", ""), settings_prefix="MLMESH_WEBHOOK",
        purpose="webhook delivery")


@cache
def _client() -> httpx.Client:
    timeout = httpx.Timeout(float(os.environ.get("MLMESH_WEBHOOK_TIMEOUT_S", "10")))
    return guarded_client(policy(), timeout, {"User-Agent": "mlmesh-webhooks/0.1"})


def check(url: str) -> None:
    """Refuse a destination the policy does not allow (at subscription time)."""
    policy().check_url(url)


def post(url: str, headers: dict[str, str], body: str) -> int:
    """POST a delivery through the target's circuit breaker; returns the status code."""
    host = httpx.URL(url).host
    response = breaker(f"webhook:{host}").call(_client().post, url, content=body.encode(),
                                               headers=headers)
    return response.status_code
