"""The embedded mesh, started once for the end-to-end tests (as `mlmesh up` does)."""

from __future__ import annotations

import functools
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlmesh_cli import runner
from mlmesh_common import apikeys
from mlmesh_common.broker import free_port


@pytest.fixture(scope="session")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    home = tmp_path_factory.mktemp("mesh")
    # Small drift windows so the test's traffic closes one (inherited by every process).
    os.environ["MLMESH_MONITOR_WINDOW_ROWS"] = "40"
    # The test dataset host and webhook receivers listen on loopback.
    os.environ["MLMESH_ACQUIRE_ALLOWED_HOSTS"] = "127.0.0.1"
    config = runner.MeshConfig(home=home, gateway_port=free_port(), grpc_port=free_port())
    runner.launch_detached(config)
    try:
        state = runner.wait_ready(home, timeout_s=240)
    except TimeoutError:
        logs = "\n".join(f"== {p.name}\n{p.read_text()[-3000:]}"
                         for p in sorted((home / "logs").glob("*.log")))
        runner.shutdown(home)
        pytest.fail(f"mesh did not become ready:\n{logs}")
    # Every gateway call needs a key: the tests' clients send the admin key `mlmesh up` wrote.
    os.environ["MLMESH_API_KEY"] = apikeys.read_admin_key(home)
    assert os.environ["MLMESH_API_KEY"], "the runner wrote no admin key into the mesh home"
    yield state
    runner.shutdown(home)


@pytest.fixture(scope="session")
def dataset_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A local HTTP server for datasets: (base URL, folder it serves)."""
    folder = tmp_path_factory.mktemp("datasets")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", folder
    server.shutdown()
