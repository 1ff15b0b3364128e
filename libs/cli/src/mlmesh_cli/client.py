"""A small client of the gateway's REST API (used by the CLI and the tests)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx

from mlmesh_common import apikeys


class GatewayError(RuntimeError):
    """The gateway refused a request; the message carries its explanation."""


def resolve_api_key(home: Path | None = None) -> str:
    """The key the CLI sends: MLMESH_API_KEY, else MLMESH_ADMIN_API_KEY, else the admin key
    `mlmesh up` wrote into the mesh home ('' when none)."""
    return (os.environ.get("MLMESH_API_KEY", "").strip()
            or os.environ.get("MLMESH_ADMIN_API_KEY", "").strip()
            or (apikeys.read_admin_key(home) if home is not None else ""))


class _ApiKeyMetadata(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    def __init__(self, api_key: str) -> None:
        self.metadata = (("authorization", f"Bearer {api_key}"),)

    def _with_key(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        class Details(grpc.ClientCallDetails):
            pass

        out = Details()
        out.method, out.timeout, out.credentials = (details.method, details.timeout,
                                                    details.credentials)
        out.wait_for_ready = getattr(details, "wait_for_ready", None)
        out.compression = getattr(details, "compression", None)
        out.metadata = [*(details.metadata or ()), *self.metadata]
        return out

    def intercept_unary_unary(self, continuation: Any, details: grpc.ClientCallDetails,
                              request: Any) -> Any:
        return continuation(self._with_key(details), request)

    def intercept_unary_stream(self, continuation: Any, details: grpc.ClientCallDetails,
                               request: Any) -> Any:
        return continuation(self._with_key(details), request)


def authorized_channel(target: str, api_key: str = "") -> grpc.Channel:
    """An insecure gRPC channel to the gateway that sends the API key on every call."""
    api_key = api_key or resolve_api_key()
    channel = grpc.insecure_channel(target)
    return grpc.intercept_channel(channel, _ApiKeyMetadata(api_key)) if api_key else channel


class GatewayClient:
    """Submit, get, cancel and watch experiments over REST (authenticated with an API key:
    `api_key`, else MLMESH_API_KEY / MLMESH_ADMIN_API_KEY)."""

    def __init__(self, base_url: str, timeout_s: float = 30.0, api_key: str = "") -> None:
        self.base_url = base_url.rstrip("/")
        api_key = api_key or resolve_api_key()
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout_s, headers=headers)

    @classmethod
    def for_home(cls, home: Path, base_url: str, timeout_s: float = 30.0) -> GatewayClient:
        """A client of the mesh at `home`, with the key resolve_api_key(home) finds."""
        return cls(base_url, timeout_s, api_key=resolve_api_key(home))

    def close(self) -> None:
        self._http.close()

    def _check(self, response: httpx.Response) -> dict[str, Any]:
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {"detail": response.text}
            detail = body.get("errors") or body.get("detail") or body
            hint = ""
            if response.status_code == 401:
                hint = (" (set MLMESH_API_KEY, or run against the mesh home whose admin.key "
                        "`mlmesh up` wrote)")
            raise GatewayError(f"gateway answered {response.status_code}: {detail}{hint}")
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

    def create_key(self, role: str, projects: list[str], name: str = "") -> dict[str, Any]:
        return self._check(self._http.post("/v1/keys", json={"name": name, "role": role,
                                                              "projects": projects}))

    def keys(self, include_revoked: bool = False) -> list[dict[str, Any]]:
        return self._check(self._http.get("/v1/keys", params={
            "include_revoked": str(include_revoked).lower()}))["keys"]

    def revoke_key(self, key_id: str) -> dict[str, Any]:
        return self._check(self._http.delete(f"/v1/keys/{key_id}"))

    def audit(self, key_id: str = "", action: str = "", limit: int = 100) -> list[dict[str, Any]]:
        params = {k: v for k, v in {"key_id": key_id, "action": action}.items() if v}
        return self._check(self._http.get("/v1/audit",
                                          params={**params, "limit": limit}))["entries"]

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
