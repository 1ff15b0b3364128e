"""Local servers for the git tests: a smart-HTTP git remote behind basic auth (git
http-backend), and a fake GitHub / GitLab pull-request API."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


@dataclass
class GitHttpRemote:
    """A bare repository served over HTTP; every Authorization header it saw is kept."""

    url: str
    bare: Path
    authorizations: list[str] = field(default_factory=list)


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int(handler.rfile.readline().strip(), 16)
            if size == 0:
                handler.rfile.readline()
                return body
            body += handler.rfile.read(size)
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


@contextmanager
def git_http_remote(root: Path, username: str, token: str) -> Iterator[GitHttpRemote]:
    """Serve ``root/remote.git`` at http://127.0.0.1:<port>/remote.git, requiring
    basic auth ``username:token`` for every request."""
    bare = root / "remote.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(bare)], check=True)
    expected = "Basic " + base64.b64encode(f"{username}:{token}".encode()).decode()
    state = GitHttpRemote(url="", bare=bare)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def _serve(self) -> None:
            auth = self.headers.get("Authorization", "")
            state.authorizations.append(auth)
            body = _read_body(self)
            if auth != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            path, _, query = self.path.partition("?")
            env = {"PATH": os.environ["PATH"], "GIT_PROJECT_ROOT": str(root),
                   "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": path, "QUERY_STRING": query,
                   "REQUEST_METHOD": self.command, "REMOTE_USER": username,
                   "REMOTE_ADDR": "127.0.0.1", "CONTENT_LENGTH": str(len(body)),
                   "CONTENT_TYPE": self.headers.get("Content-Type", "")}
            if self.headers.get("Content-Encoding"):
                env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
            if self.headers.get("Git-Protocol"):
                env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
            out = subprocess.run(["git", "http-backend"], input=body, env=env,
                                 capture_output=True, check=True).stdout
            head, _, payload = out.partition(b"\r\n\r\n")
            status = 200
            headers = []
            for line in head.decode().split("\r\n"):
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.strip().split()[0])
                elif name:
                    headers.append((name, value.strip()))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}/remote.git"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class FakePullRequestApi:
    """A fake GitHub (``/repos/{repo}/pulls``) or GitLab (``/projects/{id}/merge_requests``)
    API that checks the auth header and records created requests."""

    url: str = ""
    created: list[dict] = field(default_factory=list)
    requests: list[tuple[str, str, dict]] = field(default_factory=list)


@contextmanager
def fake_pull_request_api(provider: str, repository: str, token: str
                          ) -> Iterator[FakePullRequestApi]:
    """Serve a fake pull-request API for ``repository`` accepting only ``token``."""
    state = FakePullRequestApi()
    if provider == "github":
        collection = f"/repos/{repository}/pulls"
        auth_header, auth_value = "Authorization", f"Bearer {token}"
        required = {"title", "head", "base", "body"}
    else:
        collection = f"/api/v4/projects/{repository.replace('/', '%2F')}/merge_requests"
        auth_header, auth_value = "PRIVATE-TOKEN", token
        required = {"title", "source_branch", "target_branch", "description"}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def _reply(self, status: int, body) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _check(self) -> tuple[str, dict] | None:
            parts = urlsplit(self.path)
            headers = {k.lower(): v for k, v in self.headers.items()}
            state.requests.append((self.command, self.path, headers))
            if self.headers.get(auth_header) != auth_value:
                self._reply(401, {"message": "Bad credentials"})
                return None
            if parts.path != collection:
                self._reply(404, {"message": "Not Found"})
                return None
            return parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}

        def do_GET(self) -> None:
            checked = self._check()
            if checked is None:
                return
            _, query = checked
            if provider == "github":
                owner = repository.split("/")[0]
                found = [p for p in state.created if f"{owner}:{p['head']}" == query.get("head")]
            else:
                found = [p for p in state.created
                         if p["source_branch"] == query.get("source_branch")]
            self._reply(200, found)

        def do_POST(self) -> None:
            checked = self._check()
            if checked is None:
                return
            payload = json.loads(_read_body(self) or b"{}")
            if not required <= set(payload):
                self._reply(422, {"message": f"missing {sorted(required - set(payload))}"})
                return
            number = len(state.created) + 1
            web = (f"https://{provider}.example/{repository}/"
                   f"{'pull' if provider == 'github' else '-/merge_requests'}/{number}")
            record = {**payload, "number": number, "iid": number,
                      "html_url": web, "web_url": web}
            state.created.append(record)
            self._reply(201, record)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}" + ("/api/v4" if provider == "gitlab"
                                                             else "")
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
