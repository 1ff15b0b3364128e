"""Fixtures of the reliability tests: one supervised mesh per module, a dataset host and a
webhook receiver (helpers and sizes are in reliability_helpers.py)."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator

import pytest
from reliability_helpers import Receiver, admin_headers, start_mesh

from mlmesh_cli import runner
from mlmesh_cli.client import GatewayClient
from mlmesh_cli.demo import penguins_csv


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    home = tmp_path_factory.mktemp("reliable-mesh")
    state = start_mesh(home)
    yield state
    runner.shutdown(home)


@pytest.fixture(scope="module")
def client(mesh: dict) -> Iterator[GatewayClient]:
    gateway = GatewayClient(mesh["gateway_url"], timeout_s=30)
    gateway._http.headers.update(admin_headers())
    yield gateway
    gateway.close()


@pytest.fixture(scope="module")
def dataset_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """penguins.csv served over HTTP on loopback."""
    folder = tmp_path_factory.mktemp("datasets")
    csv = penguins_csv(folder)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/{csv.name}"
    server.shutdown()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    yield rec
    rec.server.shutdown()
