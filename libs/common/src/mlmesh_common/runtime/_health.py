from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app

from mlmesh_common import breakers

if TYPE_CHECKING:
    from mlmesh_common.runtime._service import Service


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class HealthServer:
    """/metrics, /healthz and /readyz for a service, on a thread of its own."""

    def __init__(self, service: Service, host: str, port: int) -> None:
        self.service = service
        self._metrics = make_wsgi_app()
        self._server: WSGIServer = make_server(host, port, self._app, handler_class=_QuietHandler)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="health")

    def _app(self, environ: dict, start_response: Any) -> list[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return self._metrics(environ, start_response)
        if path in ("/healthz", "/readyz"):
            ok = path == "/healthz" or self.service.ready
            body = json.dumps({"service": self.service.name, "version": self.service.version,
                               "ready": self.service.ready, "breakers": breakers.states()})
            start_response("200 OK" if ok else "503 Service Unavailable",
                           [("Content-Type", "application/json")])
            return [body.encode()]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found; try /metrics, /healthz or /readyz\n"]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
