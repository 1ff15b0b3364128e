"""A scriptable HTTP server on 127.0.0.1 for the acquire source tests.

Routes answer like the real hosts do: files with ETag and Range support (or without),
redirects, JSON APIs, and misbehaviour on purpose (connections that break, stall or end
early). Every request is recorded, headers included, for assertions.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from mlmesh_acquire.safety import FetchLimits, NetworkPolicy

#: The policy the tests use: 127.0.0.1 allowed, everything else non-public refused.
LOCAL_POLICY = NetworkPolicy.parse(allowed_hosts="127.0.0.1")
#: Short timeouts and quick retries, so failure cases take well under a second or two.
FAST_LIMITS = FetchLimits(connect_timeout_s=2.0, read_timeout_s=3.0, stall_timeout_s=0.5,
                          max_redirects=5, attempts=3, retry_initial_s=0.01,
                          retry_max_s=0.05)


@dataclass
class Seen:
    """One request the server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


Handler = Callable[[BaseHTTPRequestHandler, "FakeHost"], None]


@dataclass
class FakeHost:
    """Routes by path (query ignored); unknown paths answer 404 with a JSON error."""

    routes: dict[str, Handler] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    base_url: str = ""

    # -- route helpers ---------------------------------------------------------------------
    def route(self, path: str, handler: Handler) -> str:
        self.routes[path] = handler
        return self.base_url + path

    def file(self, path: str, body: bytes, *, etag: str | None = '"v1"',
             last_modified: str | None = None, honour_range: bool = True,
             break_after: int | None = None, breaks: int = 0,
             content_type: str = "application/octet-stream",
             disposition: str | None = None, length: bool = True) -> str:
        """Serve ``body``; the first ``breaks`` responses stop at byte ``break_after``."""
        left = {"breaks": breaks}

        def handler(h: BaseHTTPRequestHandler, host: FakeHost) -> None:
            start = 0
            wanted = h.headers.get("Range")
            validator = h.headers.get("If-Range")
            current = etag or last_modified
            if honour_range and wanted and (validator is None or validator == current):
                start = int(re.fullmatch(r"bytes=(\d+)-", wanted).group(1))  # type: ignore[union-attr]
                if start >= len(body):
                    h.send_response(416)
                    h.send_header("Content-Range", f"bytes */{len(body)}")
                    h.send_header("Content-Length", "0")
                    h.end_headers()
                    return
                h.send_response(206)
                h.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                h.send_response(200)
            if etag:
                h.send_header("ETag", etag)
            if last_modified:
                h.send_header("Last-Modified", last_modified)
            if honour_range:
                h.send_header("Accept-Ranges", "bytes")
            h.send_header("Content-Type", content_type)
            if disposition:
                h.send_header("Content-Disposition", disposition)
            if length:
                h.send_header("Content-Length", str(len(body) - start))
            h.send_header("Connection", "close")
            h.end_headers()
            end = len(body)
            if left["breaks"] > 0 and break_after is not None:
                left["breaks"] -= 1
                end = max(start, break_after)
            h.wfile.write(body[start:end])
            h.wfile.flush()
            h.close_connection = True

        return self.route(path, handler)

    def json(self, path: str, payload: Any, status: int = 200) -> str:
        data = json.dumps(payload).encode()

        def handler(h: BaseHTTPRequestHandler, host: FakeHost) -> None:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)

        return self.route(path, handler)

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        def handler(h: BaseHTTPRequestHandler, host: FakeHost) -> None:
            h.send_response(status)
            h.send_header("Location", location)
            h.send_header("Content-Length", "0")
            h.end_headers()

        return self.route(path, handler)

    def status(self, path: str, code: int, headers: dict[str, str] | None = None) -> str:
        def handler(h: BaseHTTPRequestHandler, host: FakeHost) -> None:
            body = json.dumps({"code": code, "message": "nope"}).encode()
            h.send_response(code)
            for key, value in (headers or {}).items():
                h.send_header(key, value)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)

        return self.route(path, handler)

    def stall(self, path: str, body: bytes, after_bytes: int, *,
              before_headers: float = 0.0) -> str:
        """Announce ``body``, send ``after_bytes`` of it, then go silent (until stopped).

        With ``before_headers`` the server first thinks that long before answering and
        then sends everything (a slow but healthy API)."""

        def handler(h: BaseHTTPRequestHandler, host: FakeHost) -> None:
            if before_headers:
                host.release.wait(before_headers)
            h.send_response(200)
            h.send_header("Content-Length", str(len(body)))
            h.send_header("Content-Type", "text/csv")
            h.send_header("Connection", "close")
            h.end_headers()
            if before_headers:
                h.wfile.write(body)
                return
            h.wfile.write(body[:after_bytes])
            h.wfile.flush()
            host.release.wait(10)
            h.close_connection = True

        return self.route(path, handler)

    def requests_to(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]


def _make_handler(host: FakeHost) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # keep output clean
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            host.seen.append(Seen("GET", parts.path, parse_qs(parts.query),
                                  {k.lower(): v for k, v in self.headers.items()}))
            handler = host.routes.get(parts.path)
            if handler is None:
                body = b'{"error": "not found"}'
                self.send_response(404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            handler(self, host)

    return _Handler


@contextmanager
def fake_host() -> Iterator[FakeHost]:
    """Start a :class:`FakeHost` on a free port of 127.0.0.1; stop it afterwards."""
    host = FakeHost()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(host))
    server.daemon_threads = True
    host.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield host
    finally:
        host.release.set()
        server.shutdown()
        server.server_close()
