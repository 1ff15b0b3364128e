"""A small client of the gateway's REST API (used by the CLI and the tests)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx


class GatewayError(RuntimeError):
    """The gateway refused a request; the message carries its explanation."""


class GatewayClient:
    """Submit, get, cancel and watch experiments over REST."""

    def __init__(self, base_url: str, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def _check(self, response: httpx.Response) -> dict[str, Any]:
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {"detail": response.text}
            detail = body.get("errors") or body.get("detail") or body
            raise GatewayError(f"gateway answered {response.status_code}: {detail}")
        return response.json()

    def submit(self, spec: dict[str, Any]) -> dict[str, Any]:
        return self._check(self._http.post("/v1/experiments", json=spec))

    def get(self, experiment_id: str) -> dict[str, Any]:
        return self._check(self._http.get(f"/v1/experiments/{experiment_id}"))

    def list(self, project: str = "", status: str = "", limit: int = 50) -> list[dict[str, Any]]:
        params = {k: v for k, v in {"project": project, "status": status}.items() if v}
        return self._check(self._http.get("/v1/experiments",
                                          params={**params, "limit": limit}))["experiments"]

    def cancel(self, experiment_id: str, reason: str = "") -> dict[str, Any]:
        return self._check(self._http.post(f"/v1/experiments/{experiment_id}/cancel",
                                           json={"reason": reason}))

    def dead_letters(self, source_topic: str = "", experiment_id: str = "", status: str = "open",
                     limit: int = 100) -> dict[str, Any]:
        params = {"source_topic": source_topic, "experiment_id": experiment_id,
                  "status": status, "limit": limit}
        return self._check(self._http.get("/v1/dlq", params={k: v for k, v in params.items()
                                                             if v}))

    def dead_letter(self, letter_id: str) -> dict[str, Any]:
        return self._check(self._http.get(f"/v1/dlq/{letter_id}"))

    def replay(self, letter_id: str) -> dict[str, Any]:
        return self._check(self._http.post(f"/v1/dlq/{letter_id}/replay"))

    def purge(self, letter_id: str) -> dict[str, Any]:
        return self._check(self._http.post(f"/v1/dlq/{letter_id}/purge"))

    def webhooks(self, project: str) -> list[dict[str, Any]]:
        return self._check(self._http.get(f"/v1/projects/{project}/webhooks"))["webhooks"]

    def add_webhook(self, project: str, url: str, event_types: list[str],
                    secret: str = "") -> dict[str, Any]:
        return self._check(self._http.post(f"/v1/projects/{project}/webhooks", json={
            "url": url, "event_types": event_types, "secret": secret}))

    def remove_webhook(self, webhook_id: str) -> None:
        response = self._http.delete(f"/v1/webhooks/{webhook_id}")
        if response.status_code != 204:
            self._check(response)

    def deliveries(self, webhook_id: str, limit: int = 100) -> list[dict[str, Any]]:
        return self._check(self._http.get(f"/v1/webhooks/{webhook_id}/deliveries",
                                          params={"limit": limit}))["deliveries"]

    def watch(self, experiment_id: str, after: int = 0) -> Iterator[tuple[str, dict[str, Any]]]:
        """(event type, data) pairs from the SSE stream, ending with ('end', experiment)."""
        with self._http.stream("GET", f"/v1/experiments/{experiment_id}/events",
                               params={"after": after}, timeout=None) as response:
            if response.status_code >= 400:
                response.read()
                self._check(response)
            event, data = "message", []
            for line in response.iter_lines():
                if not line:
                    if data:
                        yield event, json.loads("\n".join(data))
                    event, data = "message", []
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
