"""Helpers of the reliability tests: sizes, the mesh's environment, process kills, waits."""

from __future__ import annotations

import http.server
import json
import os
import secrets
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlmesh_cli import runner
from mlmesh_cli.client import GatewayClient
from mlmesh_common.broker import free_port

SIZES = {
    "ci": {"kill_experiments": 1, "poison": 100, "concurrent": 10, "load_s": 10,
           "load_rps": 200},
    "full": {"kill_experiments": 3, "poison": 1000, "concurrent": 50, "load_s": 60,
             "load_rps": 200},
}
SIZE_NAME = os.environ.get("MLMESH_RELIABILITY_SIZE", "ci")
SIZE = SIZES[SIZE_NAME]
#: Environment of the mesh's processes: loopback hosts allowed, a watchdog that acts within
#: seconds, and consumer sessions that notice a killed member quickly.
MESH_ENV = {
    "MLMESH_ACQUIRE_ALLOWED_HOSTS": "127.0.0.1", "MLMESH_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
    "MLMESH_WATCHDOG_IDLE_S": "10", "MLMESH_WATCHDOG_INTERVAL_S": "3",
    "MLMESH_SESSION_TIMEOUT_MS": "6000", "MLMESH_HEARTBEAT_INTERVAL_MS": "1000",
    # The load test drives one key at 200 req/s: keep the per-key limit out of its way.
    "MLMESH_API_RATE_PER_S": "2000", "MLMESH_API_RATE_BURST": "4000",
    # The gateway installs it as the bootstrap admin key; the tests authenticate with it.
    "MLMESH_ADMIN_API_KEY": os.environ.get("MLMESH_ADMIN_API_KEY")
    or f"mlmesh-reliability-{secrets.token_hex(20)}",
}


def admin_headers() -> dict[str, str]:
    """The admin API key of the test mesh, as the gateway expects it."""
    return {"Authorization": f"Bearer {MESH_ENV['MLMESH_ADMIN_API_KEY']}"}


def start_mesh(home: Path, **config: Any) -> dict:
    saved = {k: os.environ.get(k) for k in MESH_ENV}
    os.environ.update(MESH_ENV)
    try:
        runner.launch_detached(runner.MeshConfig(home=home, gateway_port=free_port(),
                                                 grpc_port=free_port(), **config))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    try:
        return runner.wait_ready(home, timeout_s=300)
    except TimeoutError:
        logs = "\n".join(f"== {p.name}\n{p.read_text()[-2000:]}"
                         for p in sorted((home / "logs").glob("*.log")))
        runner.shutdown(home)
        pytest.fail(f"mesh did not become ready:\n{logs}")


class Receiver:
    """A webhook receiver counting deliveries by (event type, experiment, CloudEvent id)."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        lock = threading.Lock()
        posts = self.posts

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with lock:
                    posts.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"

    def counts(self, experiment_id: str) -> Counter:
        """Distinct CloudEvents per type for one experiment."""
        return Counter(t for t, _ in {(p["type"], p["id"]) for p in self.posts
                                      if p.get("subject") == experiment_id})


def spec(dataset_url: str, project: str, **extra: Any) -> dict[str, Any]:
    """A small experiment: two cheap families, two trials, every stage."""
    return {"dataset_uri": dataset_url, "target": "species", "time_budget_s": 30,
            "max_trials": 2, "families": ["dummy", "linear"], "project": project, **extra}


def get(client: GatewayClient, experiment_id: str) -> dict:
    """The experiment, retrying while the gateway restarts."""
    for _ in range(120):
        try:
            return client.get(experiment_id)
        except (httpx.HTTPError, OSError):
            time.sleep(0.5)
    return client.get(experiment_id)


def wait_done(client: GatewayClient, experiment_ids: list[str], timeout_s: float) -> dict:
    """Wait until every experiment reaches a terminal status; returns them by id."""
    deadline = time.monotonic() + timeout_s
    final: dict[str, dict] = {}
    while time.monotonic() < deadline and len(final) < len(experiment_ids):
        for eid in experiment_ids:
            if eid not in final:
                record = get(client, eid)
                if record["status"] in ("completed", "failed", "cancelled"):
                    final[eid] = record
        time.sleep(1)
    missing = {eid: [(s["name"], s["status"]) for s in get(client, eid)["stages"]]
               for eid in experiment_ids if eid not in final}
    assert not missing, f"not done after {timeout_s:.0f}s: {missing}"
    return final


def kill9(home: Path, process: str) -> int:
    """SIGKILL a supervised process (its whole process group); returns the pid killed."""
    state = runner.read_state(home)
    assert state is not None, "the supervisor is gone"
    pid = state["processes"][process]["pid"]
    os.killpg(pid, signal.SIGKILL)
    return pid


def wait_restarted(home: Path, process: str, old_pid: int, timeout_s: float = 60) -> None:
    """Wait until the supervisor has started `process` again under a new pid."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = runner.read_state(home)
        if state and state["processes"].get(process, {}).get("pid") not in (None, old_pid):
            return
        time.sleep(0.3)
    raise AssertionError(f"{process} was not restarted within {timeout_s:.0f}s")
