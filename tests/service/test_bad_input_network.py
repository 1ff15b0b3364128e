"""Network trouble on the real broker: each bad source ends its experiment at acquire with a
reason that names the problem, and a good experiment right after is still prepared."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from palmerpenguins import load_penguins

from mlmesh.events.v1.experiment_pb2 import ExperimentSpec
from mlmesh_common.settings import Settings

pytestmark = pytest.mark.service

Reply = Callable[[BaseHTTPRequestHandler, threading.Event], None]


@pytest.fixture
def mesh_settings(mesh_settings: Settings) -> Settings:
    """The shared test settings, with 127.0.0.1 allowed and short network timeouts."""
    return mesh_settings.model_copy(update={
        "acquire_allowed_hosts": "127.0.0.1", "acquire_stall_timeout_s": 0.5,
        "acquire_read_timeout_s": 5.0, "acquire_connect_timeout_s": 2.0,
        "acquire_attempts": 2, "acquire_retry_initial_s": 0.05, "acquire_retry_max_s": 0.1,
        "acquire_max_redirects": 5, "acquire_max_bytes": 2_000_000})


@contextmanager
def serving(routes: dict[str, Reply]) -> Iterator[str]:
    """A server on its own port of 127.0.0.1 (so each case has its own circuit breaker)."""
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            reply = routes.get(self.path.split("?")[0])
            if reply is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            reply(self, release)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def redirect(location: str) -> Reply:
    def reply(h: BaseHTTPRequestHandler, _: threading.Event) -> None:
        h.send_response(302)
        h.send_header("Location", location)
        h.send_header("Content-Length", "0")
        h.end_headers()
    return reply


def body(data: bytes, *, announce: int | None = None, send: int | None = None,
         stall: bool = False) -> Reply:
    """Answer ``data`` (announcing ``announce`` bytes, sending ``send`` of them, then
    stalling or closing)."""
    def reply(h: BaseHTTPRequestHandler, release: threading.Event) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/csv")
        h.send_header("Content-Length", str(announce if announce is not None else len(data)))
        h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.write(data[:send] if send is not None else data)
        h.wfile.flush()
        if stall:
            release.wait(10)
        h.close_connection = True
    return reply


async def test_network_failures_are_named_and_the_mesh_keeps_going(data_in_mesh,
                                                                   tmp_path: Path) -> None:
    csv = load_penguins().to_csv(index=False).encode()
    cases = [
        ("redirect to a private address",
         {"/data.csv": redirect("http://10.0.0.1/data.csv")}, "/data.csv", {},
         ["10.0.0.1", "private address", "MLMESH_ACQUIRE_ALLOWED_HOSTS"]),
        ("redirect to the metadata service",
         {"/data.csv": redirect("http://169.254.169.254/latest/meta-data/")}, "/data.csv", {},
         ["169.254.169.254", "cloud metadata"]),
        ("redirect loop",
         {"/a.csv": redirect("/b.csv"), "/b.csv": redirect("/a.csv")}, "/a.csv", {},
         ["redirect loop", "/a.csv -> ", "/b.csv -> "]),
        ("a server that stalls",
         {"/slow.csv": body(csv, send=100, stall=True)}, "/slow.csv", {},
         ["stalled: no bytes for 0.5 s after 100 of", "gave up after 2 attempts"]),
        ("a truncated download",
         {"/cut.csv": body(csv, send=len(csv) // 3)}, "/cut.csv", {},
         [f"after {len(csv) // 3} of {len(csv)} bytes", "truncated download"]),
        ("a wrong checksum",
         {"/penguins.csv": body(csv)}, "/penguins.csv", {"dataset_sha256": "0" * 64},
         ["sha256 of", "but " + "0" * 64 + " was expected"]),
        ("a 404", {}, "/missing.csv", {}, ["HTTP 404", "does not exist"]),
        ("an over-size file",
         {"/huge.csv": body(b"", announce=5_000_000_000, stall=True)}, "/huge.csv", {},
         ["5000000000 bytes, over the 2000000-byte limit", "MLMESH_ACQUIRE_MAX_BYTES"]),
    ]
    with ExitStack() as stack:
        for name, routes, path, extra, expected in cases:
            base = stack.enter_context(serving(routes))
            outcome = await data_in_mesh.run(
                ExperimentSpec(dataset_uri=base + path, project="t", **extra), timeout_s=60)
            assert (outcome.status, outcome.stage) == ("failed", "acquire"), (name, outcome)
            for fragment in expected:
                assert fragment in outcome.reason, (name, fragment, outcome.reason)

        base = stack.enter_context(serving({"/penguins.csv": body(csv)}))
        good = await data_in_mesh.run(
            ExperimentSpec(dataset_uri=base + "/penguins.csv", project="t"), timeout_s=90)
    assert good.status == "prepared", good.reason
    assert good.event.target == "species"
