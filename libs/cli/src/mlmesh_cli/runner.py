"""The embedded runner: broker, MLflow, gateway and every service as supervised processes."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from mlmesh_common import apikeys, topics
from mlmesh_common.broker import create_topics, free_port, start_tansu, wait_for_port
from mlmesh_common.lag import group_lag

log = logging.getLogger("mlmesh.runner")

#: Service name -> python module, in start order (the gateway first so submits work early).
SERVICES = {
    "gateway": "mlmesh_gateway", "acquire": "mlmesh_acquire", "profile": "mlmesh_profile",
    "prep": "mlmesh_prep", "train-gpu": "mlmesh_train_gpu", "tune": "mlmesh_tune",
    "select": "mlmesh_select", "docs": "mlmesh_docs", "git": "mlmesh_git",
    "publish": "mlmesh_publish", "monitor": "mlmesh_monitor",
    # Re-drives experiments left stuck when the in-memory broker loses its log.
    "watchdog": "mlmesh_common.watchdog",
}
STATE_FILE = "mesh.json"
#: Services the autoscaler may scale: the gateway owns fixed ports, the monitor (a Faust app)
#: keeps its drift windows in local tables, and one watchdog is enough.
SCALABLE = tuple(s for s in SERVICES if topics.groups_of(s) and s not in ("gateway", "monitor"))


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


# -- lag-driven autoscaling (the same metric and formula as the KEDA ScaledObjects) ----------
def group_partitions(group: topics.ConsumerGroup) -> int:
    """The most consumers that can share a group's work: its widest input topic."""
    return max(topics.topic_by_name(name).partitions for name in group.topics)


def desired_for_group(lag: int, threshold: int, partitions: int, max_replicas: int) -> int:
    """KEDA's answer for one group: ceil(lag / threshold), between 1 and min(max, partitions)."""
    cap = max(1, min(max_replicas, partitions))
    return max(1, min(cap, math.ceil(max(0, lag) / max(1, threshold))))


def decide_replicas(service: str, current: int, lags: Mapping[str, int], *, max_replicas: int,
                    now: float, last_change_at: float, cooldown_s: float) -> int:
    """The replica count `service` should run now, given its groups' lag.

    The busiest group decides (a process runs every group of its service). Nothing changes
    within `cooldown_s` of the last change; scaling up jumps to the target, scaling down
    steps one replica at a time so a short dip does not drain the service.
    """
    wanted = 1
    for group in topics.groups_of(service):
        if group.name in lags:
            wanted = max(wanted, desired_for_group(lags[group.name], group.lag_threshold,
                                                   group_partitions(group), max_replicas))
    if wanted == current or now - last_change_at < cooldown_s:
        return current
    return wanted if wanted > current else current - 1


@dataclass
class Autoscaler:
    """Reads lag every `interval_s` and asks `scale(service, n)` for the replicas it wants."""

    bootstrap: str
    services: tuple[str, ...]
    current: Callable[[str], int]
    scale: Callable[[str, int], None]
    max_replicas: int = 4
    cooldown_s: float = 30.0
    interval_s: float = 5.0
    last_change: dict[str, float] = field(default_factory=dict)
    last_check: float = 0.0

    def step(self, now: float | None = None) -> dict[str, int]:
        """One decision per service; returns the services whose count changed."""
        now = time.monotonic() if now is None else now
        self.last_check = now
        groups = [g for s in self.services for g in topics.groups_of(s)]
        lags = asyncio.run(group_lag(self.bootstrap, groups))
        changed = {}
        for service in self.services:
            current = self.current(service)
            wanted = decide_replicas(service, current, lags, max_replicas=self.max_replicas,
                                     now=now, last_change_at=self.last_change.get(service,
                                                                                -math.inf),
                                     cooldown_s=self.cooldown_s)
            if wanted != current:
                log.warning("autoscale %s: %d -> %d replicas (lag %s)", service, current, wanted,
                            {g.name: lags.get(g.name) for g in topics.groups_of(service)})
                self.scale(service, wanted)
                self.last_change[service] = now
                changed[service] = wanted
        return changed

    def due(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return now - self.last_check >= self.interval_s


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
    #: Scaled away: stopping on SIGTERM, never restarted.
    retired: bool = False

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
    #: Scale SCALABLE services by consumer lag (between 1 and min(max_replicas, partitions)).
    autoscale: bool = False
    max_replicas: int = 4
    scale_cooldown_s: float = 30.0


class Supervisor:
    """Starts everything, restarts what dies, stops everything on SIGTERM."""

    def __init__(self, config: MeshConfig) -> None:
        self.config = config
        self.home = config.home.resolve()
        self.logs = self.home / "logs"
        self.children: list[Child] = []
        self._broker: subprocess.Popen | None = None
        self._broker_port = 0
        self._bootstrap = ""
        self._env: dict[str, str] = {}
        self._stopping = False
        self.autoscaler: Autoscaler | None = None

    # -- infrastructure ---------------------------------------------------------------------
    def _start_broker(self) -> str:
        if self.config.kafka_bootstrap:
            return self.config.kafka_bootstrap
        self._broker_port = self._broker_port or free_port()
        self.logs.mkdir(parents=True, exist_ok=True)
        self._broker = start_tansu(self._broker_port, self.logs / "tansu.log")
        return f"127.0.0.1:{self._broker_port}"

    def _restart_broker(self) -> None:
        """The embedded broker died: start it again on its port and recreate the topics.

        Tansu keeps its log in memory, so events in flight and committed offsets are lost.
        The services are stopped first and started again after: a consumer that outlived
        the broker would keep its old positions (and could commit them to the new broker),
        skipping the new log's first offsets. The watchdog re-drives the experiments whose
        events were lost, from the ledger.
        """
        code = self._broker.returncode if self._broker else None
        log.warning("the broker exited (%s); stopping the services and restarting it empty "
                    "on port %d", code, self._broker_port)
        services = [c for c in self.children if c.name != "mlflow" and not c.retired]
        for child in services:  # nothing can be committed without a broker: no grace needed
            if child.alive():
                os.killpg(child.proc.pid, signal.SIGKILL)
        for child in services:
            if child.proc is not None:
                child.proc.wait()
        self._start_broker()
        asyncio.run(create_topics(self._bootstrap))
        for child in services:
            child.start()
        self._write_state(broker_pid=self._broker.pid if self._broker else None)

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
        if not os.environ.get("MLMESH_ADMIN_API_KEY"):
            # The gateway installs this key as admin; the CLI reads it from the home.
            apikeys.ensure_admin_key_file(self.home)
        bootstrap = self._bootstrap = self._start_broker()
        asyncio.run(create_topics(bootstrap))
        mlflow = self._mlflow_child({**os.environ, "PYTHONUNBUFFERED": "1"})
        mlflow_url = f"http://127.0.0.1:{mlflow.port}"
        self._env = self.base_env(bootstrap, mlflow_url)
        mlflow.start()
        self.children.append(mlflow)
        for name in self.config.services:
            for index in range(self.config.replicas.get(name, 1)):
                self.children.append(self.service_child(name, index))
        for child in self.children[1:]:
            child.start()
        if self.config.autoscale:
            self.autoscaler = Autoscaler(
                bootstrap, tuple(s for s in self.config.services if s in SCALABLE),
                current=self.replica_count, scale=self.scale_to,
                max_replicas=self.config.max_replicas, cooldown_s=self.config.scale_cooldown_s)
        state = {
            "supervisor_pid": os.getpid(), "home": str(self.home), "kafka_bootstrap": bootstrap,
            "broker_pid": self._broker.pid if self._broker else None,
            "gateway_url": f"http://127.0.0.1:{self.config.gateway_port}",
            "grpc_target": f"127.0.0.1:{self.config.grpc_port}", "mlflow_url": mlflow_url,
            "processes": {c.name: {"pid": c.proc.pid if c.proc else None, "port": c.port,
                                   "log": str(c.log_path)} for c in self.children},
            "started_at": time.time(), "autoscale": self.config.autoscale,
        }
        (self.home / STATE_FILE).write_text(json.dumps(state, indent=2))
        return state

    def service_child(self, name: str, index: int) -> Child:
        """Replica `index` of service `name` (not started)."""
        port = free_port()
        env = {**self._env, "MLMESH_HTTP_PORT": str(port), "MLMESH_INSTANCE": f"{name}-{index}"}
        return Child(f"{name}-{index}", [sys.executable, "-m", SERVICES[name]], env,
                     self.logs / f"{name}-{index}.log", port)

    def _replicas(self, service: str) -> list[Child]:
        return [c for c in self.children if not c.retired
                and c.name.rpartition("-")[0] == service]

    def replica_count(self, service: str) -> int:
        """Replicas of `service` running or starting (retiring ones not counted)."""
        return len(self._replicas(service))

    def scale_to(self, service: str, replicas: int) -> None:
        """Start or retire replicas of `service` until `replicas` run (at least 1).

        A retired replica gets SIGTERM: it finishes or hands back its current message,
        commits and leaves the group, so no work is lost.
        """
        current = self._replicas(service)
        used = {int(c.name.rpartition("-")[2]) for c in self.children
                if c.name.rpartition("-")[0] == service}
        index = 0
        while len(current) < replicas:
            while index in used:
                index += 1
            child = self.service_child(service, index)
            used.add(index)
            child.start()
            self.children.append(child)
            current.append(child)
        while len(current) > max(1, replicas):
            child = max(current, key=lambda c: int(c.name.rpartition("-")[2]))
            current.remove(child)
            child.retired = True
            if child.alive():
                os.killpg(child.proc.pid, signal.SIGTERM)
        self._write_state()

    def supervise(self) -> None:
        """Restart children that die (with backoff) until SIGTERM/SIGINT."""
        signal.signal(signal.SIGTERM, lambda *_: self._request_stop())
        signal.signal(signal.SIGINT, lambda *_: self._request_stop())
        while not self._stopping:
            if self._broker is not None and self._broker.poll() is not None:
                self._restart_broker()
            if self.autoscaler is not None and self.autoscaler.due():
                try:
                    self.autoscaler.step()
                except Exception:  # a failed lag read must not stop supervision
                    log.exception("autoscaler step failed")
            for child in list(self.children):
                if child.retired and not child.alive():
                    self.children.remove(child)
                    self._write_state()
                    continue
                if self._stopping or child.alive() or child.retired:
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
        self._write_state()

    def _write_state(self, **extra: object) -> None:
        """Rewrite mesh.json's process table (pids, ports, restarts) after a change."""
        path = self.home / STATE_FILE
        if not path.exists():
            return
        state = json.loads(path.read_text())
        state.update(extra)
        state["processes"] = {
            c.name: {"pid": c.proc.pid if c.proc else None, "port": c.port,
                     "log": str(c.log_path), "restarts": c.restarts}
            for c in self.children if not c.retired}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(path)

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
    if config.autoscale:
        argv += ["--autoscale", "--max-replicas", str(config.max_replicas),
                 "--scale-cooldown", str(config.scale_cooldown_s)]
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


__all__ = ["Autoscaler", "MeshConfig", "Supervisor", "decide_replicas", "desired_for_group",
           "launch_detached", "parse_replicas", "probe",
           "read_state", "shutdown", "wait_for_port", "wait_ready"]
