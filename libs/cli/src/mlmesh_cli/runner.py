"""The embedded runner: broker, MLflow, gateway and every service as supervised processes."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from mlmesh_common.broker import create_topics, free_port, start_tansu, wait_for_port

log = logging.getLogger("mlmesh.runner")

#: Service name -> python module, in start order (the gateway first so submits work early).
SERVICES = {
    "gateway": "mlmesh_gateway", "acquire": "mlmesh_acquire", "profile": "mlmesh_profile",
    "prep": "mlmesh_prep", "train-gpu": "mlmesh_train_gpu", "tune": "mlmesh_tune",
    "select": "mlmesh_select", "docs": "mlmesh_docs", "git": "mlmesh_git",
    "publish": "mlmesh_publish", "monitor": "mlmesh_monitor",
}
STATE_FILE = "mesh.json"


def parse_replicas(text: str) -> dict[str, int]:
    """'tune=2,train-gpu=2' -> {'tune': 2, 'train-gpu': 2}, checked against the services."""
    replicas: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, count = part.partition("=")
        if name not in SERVICES or not count.isdigit() or int(count) < 1:
            raise ValueError(f"bad replica spec {part!r}: use <service>=<n> with n >= 1 and a "
                             f"service among {', '.join(SERVICES)}")
        replicas[name] = int(count)
    return replicas


@dataclass
class Child:
    """One supervised process."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    port: int = 0
    proc: subprocess.Popen | None = None
    restarts: int = 0
    started_at: float = 0.0

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(self.argv, env=self.env, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        self.started_at = time.monotonic()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class MeshConfig:
    """Where the embedded mesh keeps its state and which ports it uses."""

    home: Path
    gateway_port: int = 8080
    grpc_port: int = 50051
    mlflow_port: int = 0
    kafka_bootstrap: str = ""
    replicas: dict[str, int] = field(default_factory=dict)
    services: tuple[str, ...] = tuple(SERVICES)


class Supervisor:
    """Starts everything, restarts what dies, stops everything on SIGTERM."""

    def __init__(self, config: MeshConfig) -> None:
        self.config = config
        self.home = config.home.resolve()
        self.logs = self.home / "logs"
        self.children: list[Child] = []
        self._broker: subprocess.Popen | None = None
        self._stopping = False

    # -- infrastructure ---------------------------------------------------------------------
    def _start_broker(self) -> str:
        if self.config.kafka_bootstrap:
            return self.config.kafka_bootstrap
        port = free_port()
        self.logs.mkdir(parents=True, exist_ok=True)
        self._broker = start_tansu(port, self.logs / "tansu.log")
        return f"127.0.0.1:{port}"

    def _mlflow_child(self, env: dict[str, str]) -> Child:
        port = self.config.mlflow_port or free_port()
        store = self.home / "mlflow"
        store.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1",
                "--port", str(port), "--workers", "1",
                "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}",
                "--artifacts-destination", str(store / "artifacts")]
        return Child("mlflow", argv, env, self.logs / "mlflow.log", port)

    def base_env(self, bootstrap: str, mlflow_url: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLMESH_HTTP_PORT")}
        env.update({
            "MLMESH_HOME": str(self.home), "MLMESH_KAFKA_BOOTSTRAP": bootstrap,
            "MLMESH_MLFLOW_TRACKING_URI": mlflow_url, "MLFLOW_TRACKING_URI": mlflow_url,
            "MLMESH_GATEWAY_PORT": str(self.config.gateway_port),
            "MLMESH_GRPC_PORT": str(self.config.grpc_port), "PYTHONUNBUFFERED": "1",
            "GIT_PYTHON_REFRESH": "quiet", "MLFLOW_ENABLE_ASYNC_LOGGING": "false",
        })
        return env

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> dict:
        bootstrap = self._start_broker()
        asyncio.run(create_topics(bootstrap))
        mlflow = self._mlflow_child({**os.environ, "PYTHONUNBUFFERED": "1"})
        mlflow_url = f"http://127.0.0.1:{mlflow.port}"
        env = self.base_env(bootstrap, mlflow_url)
        mlflow.start()
        self.children.append(mlflow)
        for name in self.config.services:
            for index in range(self.config.replicas.get(name, 1)):
                port = free_port()
                child_env = {**env, "MLMESH_HTTP_PORT": str(port),
                             "MLMESH_INSTANCE": f"{name}-{index}"}
                self.children.append(Child(f"{name}-{index}", [sys.executable, "-m",
                                                               SERVICES[name]],
                                           child_env, self.logs / f"{name}-{index}.log", port))
        for child in self.children[1:]:
            child.start()
        state = {
            "supervisor_pid": os.getpid(), "home": str(self.home), "kafka_bootstrap": bootstrap,
            "broker_pid": self._broker.pid if self._broker else None,
            "gateway_url": f"http://127.0.0.1:{self.config.gateway_port}",
            "grpc_target": f"127.0.0.1:{self.config.grpc_port}", "mlflow_url": mlflow_url,
            "processes": {c.name: {"pid": c.proc.pid if c.proc else None, "port": c.port,
                                   "log": str(c.log_path)} for c in self.children},
            "started_at": time.time(),
        }
        (self.home / STATE_FILE).write_text(json.dumps(state, indent=2))
        return state

    def supervise(self) -> None:
        """Restart children that die (with backoff) until SIGTERM/SIGINT."""
        signal.signal(signal.SIGTERM, lambda *_: self._request_stop())
        signal.signal(signal.SIGINT, lambda *_: self._request_stop())
        while not self._stopping:
            for child in self.children:
                if self._stopping or child.alive():
                    continue
                code = child.proc.returncode if child.proc else None
                backoff = min(30.0, 2.0 ** min(child.restarts, 5))
                if time.monotonic() - child.started_at < backoff:
                    continue
                child.restarts += 1
                log.warning("%s exited (%s); restart #%d", child.name, code, child.restarts)
                child.start()
                self._update_pid(child)
            time.sleep(0.5)
        self.stop()

    def _request_stop(self) -> None:
        self._stopping = True

    def _update_pid(self, child: Child) -> None:
        path = self.home / STATE_FILE
        state = json.loads(path.read_text())
        state["processes"][child.name]["pid"] = child.proc.pid if child.proc else None
        state["processes"][child.name]["restarts"] = child.restarts
        path.write_text(json.dumps(state, indent=2))

    def stop(self, grace_s: float = 30.0) -> None:
        """SIGTERM every service (they finish or hand back work), then MLflow and the broker."""
        self._stopping = True
        services = [c for c in self.children if c.name != "mlflow"]
        others = [c for c in self.children if c.name == "mlflow"]
        for group in (services, others):
            for child in group:
                if child.alive():
                    os.killpg(child.proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            for child in group:
                if child.proc is None:
                    continue
                try:
                    child.proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    os.killpg(child.proc.pid, signal.SIGKILL)
                    child.proc.wait()
        if self._broker is not None and self._broker.poll() is None:
            self._broker.terminate()
            try:
                self._broker.wait(10)
            except subprocess.TimeoutExpired:
                self._broker.kill()
        (self.home / STATE_FILE).unlink(missing_ok=True)


# -- the detached supervisor, driven by `mlmesh up|down|status` --------------------------------
def read_state(home: Path) -> dict | None:
    path = home.resolve() / STATE_FILE
    if not path.exists():
        return None
    state = json.loads(path.read_text())
    try:
        os.kill(state["supervisor_pid"], 0)
    except ProcessLookupError:
        path.unlink(missing_ok=True)
        return None
    return state


def probe(state: dict, timeout_s: float = 2.0) -> dict[str, str]:
    """Health of every process: 'ready', 'starting' or 'down'."""
    health = {}
    with httpx.Client(timeout=timeout_s) as client:
        for name, proc in state["processes"].items():
            if name == "mlflow":
                url = f"{state['mlflow_url']}/health"
            elif name.startswith("gateway"):
                url = f"{state['gateway_url']}/readyz"
            else:
                url = f"http://127.0.0.1:{proc['port']}/readyz"
            try:
                health[name] = "ready" if client.get(url).status_code == 200 else "starting"
            except httpx.HTTPError:
                health[name] = "starting" if _pid_alive(proc.get("pid")) else "down"
    return health


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_ready(home: Path, timeout_s: float = 240.0) -> dict:
    """Block until every process reports ready; raises TimeoutError naming the laggards."""
    deadline = time.monotonic() + timeout_s
    health: dict[str, str] = {}
    while time.monotonic() < deadline:
        state = read_state(home)
        if state is not None:
            health = probe(state)
            if health and all(v == "ready" for v in health.values()):
                return state
        time.sleep(1)
    waiting = [n for n, v in health.items() if v != "ready"] or ["supervisor"]
    raise TimeoutError(f"mesh not ready after {timeout_s:.0f}s; still waiting for "
                       f"{', '.join(waiting)} (logs in {home.resolve() / 'logs'})")


def launch_detached(config: MeshConfig) -> int:
    """Start the supervisor in the background; returns its pid."""
    config.home.mkdir(parents=True, exist_ok=True)
    logs = config.home.resolve() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "mlmesh_cli.supervise", "--home", str(config.home.resolve()),
            "--gateway-port", str(config.gateway_port), "--grpc-port", str(config.grpc_port),
            "--replicas", ",".join(f"{k}={v}" for k, v in config.replicas.items())]
    if config.kafka_bootstrap:
        argv += ["--kafka-bootstrap", config.kafka_bootstrap]
    with open(logs / "supervisor.log", "ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    return proc.pid


def shutdown(home: Path, timeout_s: float = 90.0) -> bool:
    """Stop a running mesh; False when none was running."""
    state = read_state(home)
    if state is None:
        return False
    pid = state["supervisor_pid"]
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _pid_alive(pid):
        time.sleep(0.3)
    if _pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
    return True


__all__ = ["MeshConfig", "Supervisor", "launch_detached", "parse_replicas", "probe",
           "read_state", "shutdown", "wait_for_port", "wait_ready"]
