"""http(s) downloads against a local server: resume over Range, retries, timeouts, caps."""

from __future__ import annotations

import hashlib
import socket
import time
from dataclasses import replace
from pathlib import Path

import pytest
from source_fakes import FAST_LIMITS, LOCAL_POLICY, FakeHost, fake_host

from mlmesh_acquire.fetch import fetch_source
from mlmesh_acquire.source_errors import (
    SourceNotFoundError,
    SourceTooLargeError,
    TransientSourceError,
)

BODY = b"".join(b"%06d,%s\n" % (i, b"x" * 40) for i in range(4000))  # ~190 kB of CSV


@pytest.fixture
def host():
    with fake_host() as h:
        yield h


def fetch(url: str, dest: Path, **kw):
    kw.setdefault("policy", LOCAL_POLICY)
    kw.setdefault("limits", FAST_LIMITS)
    return fetch_source(url, dest, **kw)


def test_download_streams_to_disk_with_progress(host: FakeHost, tmp_path: Path) -> None:
    url = host.file("/data/table.csv", BODY, content_type="text/csv; charset=utf-8")
    calls: list[tuple[int, int | None]] = []
    fetched = fetch(url, tmp_path, progress=lambda d, t: calls.append((d, t)))
    assert fetched.path == tmp_path / "table.csv"
    assert fetched.path.read_bytes() == BODY
    assert fetched.sha256 == hashlib.sha256(BODY).hexdigest()
    assert (fetched.size_bytes, fetched.format) == (len(BODY), "csv")
    assert fetched.declared_media_type == "text/csv"
    assert calls[-1] == (len(BODY), len(BODY))
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert fetched.metadata == {"source": "http", "url": url}
    assert not list(tmp_path.glob("*.part"))


def test_broken_connection_resumes_with_range_and_etag(host: FakeHost, tmp_path: Path) -> None:
    half = len(BODY) // 2
    url = host.file("/t.csv", BODY, etag='"abc"', break_after=half, breaks=1)
    fetched = fetch(url, tmp_path)
    assert fetched.path.read_bytes() == BODY
    assert fetched.sha256 == hashlib.sha256(BODY).hexdigest()
    first, second = host.requests_to("/t.csv")
    assert "range" not in first.headers
    assert second.headers["range"] == f"bytes={half}-"
    assert second.headers["if-range"] == '"abc"'


def test_resume_uses_last_modified_when_there_is_no_etag(host: FakeHost, tmp_path: Path) -> None:
    stamp = "Wed, 21 Oct 2015 07:28:00 GMT"
    url = host.file("/t.csv", BODY, etag=None, last_modified=stamp, break_after=1000, breaks=1)
    fetched = fetch(url, tmp_path)
    assert fetched.path.read_bytes() == BODY
    seen = host.requests_to("/t.csv")
    assert [s.headers.get("range") for s in seen] == [None, "bytes=1000-"]
    assert seen[1].headers["if-range"] == stamp


def test_server_that_ignores_range_restarts_from_zero(host: FakeHost, tmp_path: Path) -> None:
    url = host.file("/t.csv", BODY, honour_range=False, break_after=5000, breaks=1)
    fetched = fetch(url, tmp_path)
    assert fetched.path.read_bytes() == BODY  # not the first 5000 bytes twice
    assert fetched.sha256 == hashlib.sha256(BODY).hexdigest()
    first, second = host.requests_to("/t.csv")
    assert second.headers["range"] == "bytes=5000-"  # asked, got a 200, started over


def test_without_a_validator_a_retry_starts_over(host: FakeHost, tmp_path: Path) -> None:
    url = host.file("/t.csv", BODY, etag=None, break_after=5000, breaks=1)
    fetched = fetch(url, tmp_path)
    assert fetched.path.read_bytes() == BODY
    assert all("range" not in s.headers for s in host.requests_to("/t.csv"))


def test_transient_status_is_retried_then_succeeds(host: FakeHost, tmp_path: Path) -> None:
    calls = {"n": 0}
    serve_file = FakeHost()
    serve_file.file("/t.csv", BODY)

    def flaky(h, fake) -> None:
        calls["n"] += 1
        if calls["n"] <= 2:
            h.send_response(503)
            h.send_header("Retry-After", "0")
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        serve_file.routes["/t.csv"](h, fake)

    url = host.route("/t.csv", flaky)
    assert fetch(url, tmp_path).path.read_bytes() == BODY
    assert calls["n"] == 3


def test_persistent_5xx_gives_up_with_the_status(host: FakeHost, tmp_path: Path) -> None:
    url = host.status("/down", 503)
    with pytest.raises(TransientSourceError, match=r"HTTP 503.*gave up after 3 attempts") as info:
        fetch(url, tmp_path)
    assert info.value.status == 503 and not isinstance(info.value, ValueError)
    assert len(host.requests_to("/down")) == 3
    assert not any(tmp_path.iterdir())


def test_client_errors_are_permanent_and_not_retried(host: FakeHost, tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError, match="HTTP 404.*does not exist") as info:
        fetch(host.base_url + "/missing.csv", tmp_path)
    assert info.value.status == 404
    host.status("/forbidden", 403)
    with pytest.raises(SourceNotFoundError, match="HTTP 403.*access is refused"):
        fetch(host.base_url + "/forbidden", tmp_path)
    assert len(host.requests_to("/forbidden")) == 1


def test_stall_mid_body_times_out_resumes_and_then_says_so(host: FakeHost, tmp_path: Path) -> None:
    url = host.stall("/slow.csv", BODY[:1000], after_bytes=100)
    started = time.monotonic()
    with pytest.raises(TransientSourceError) as info:
        fetch(url, tmp_path)
    elapsed = time.monotonic() - started
    message = str(info.value)
    assert info.value.kind == "stall"
    assert "stalled: no bytes for 0.5 s after 100 of 1000 bytes" in message
    assert "gave up after 3 attempts" in message
    assert elapsed < 5, elapsed
    assert not any(tmp_path.iterdir())


def test_slow_headers_are_not_a_stall(host: FakeHost, tmp_path: Path) -> None:
    # The server thinks 1 s before answering: over the 0.5 s stall timeout, under the 3 s
    # read timeout for headers, so the download succeeds.
    url = host.stall("/thinking.csv", BODY[:500], after_bytes=0, before_headers=1.0)
    fetched = fetch(url, tmp_path)
    assert fetched.path.read_bytes() == BODY[:500]


def test_no_response_within_read_timeout(host: FakeHost, tmp_path: Path) -> None:
    url = host.stall("/mute.csv", b"a,b\n", after_bytes=0, before_headers=3.0)
    limits = replace(FAST_LIMITS, read_timeout_s=0.3, attempts=2)
    with pytest.raises(TransientSourceError, match="sent no response within 0.3 s") as info:
        fetch(url, tmp_path, limits=limits)
    assert info.value.kind == "timeout"


def test_announced_size_over_the_cap_is_refused_before_download(
        host: FakeHost, tmp_path: Path) -> None:
    def huge(h, fake) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(10**12))
        h.end_headers()
        fake.release.wait(10)  # never sends a byte: reading would stall, refusing does not

    url = host.route("/huge.csv", huge)
    started = time.monotonic()
    with pytest.raises(SourceTooLargeError, match=r"is 1000000000000 bytes, over the 4096-byte"):
        fetch(url, tmp_path, limits=replace(FAST_LIMITS, max_bytes=4096))
    assert time.monotonic() - started < 2
    assert len(host.requests_to("/huge.csv")) == 1  # permanent: not retried
    assert not any(tmp_path.iterdir())


def test_streaming_past_the_cap_is_aborted(host: FakeHost, tmp_path: Path) -> None:
    url = host.file("/t.csv", BODY, length=False)  # no Content-Length: only the stream tells
    with pytest.raises(SourceTooLargeError, match="exceeds the 10000-byte limit"):
        fetch(url, tmp_path, limits=replace(FAST_LIMITS, max_bytes=10_000))
    assert not any(tmp_path.iterdir())


def test_truncated_download_is_detected_and_reported(host: FakeHost, tmp_path: Path) -> None:
    url = host.file("/cut.csv", BODY, honour_range=False, break_after=3000, breaks=100)
    with pytest.raises(TransientSourceError) as info:
        fetch(url, tmp_path)
    message = str(info.value)
    assert info.value.kind == "truncated"
    assert f"after 3000 of {len(BODY)} bytes" in message and "truncated" in message
    assert "gave up after 3 attempts" in message
    assert not any(tmp_path.iterdir())


def test_connection_refused_is_transient(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a free port, closed again so nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TransientSourceError, match=f"cannot connect to 127.0.0.1:{port}") as info:
        fetch(f"http://127.0.0.1:{port}/x.csv", tmp_path)
    assert info.value.kind == "connect"


def test_content_disposition_name_is_sanitised(host: FakeHost, tmp_path: Path) -> None:
    url = host.file("/attachment", BODY, disposition='attachment; filename="../evil name.csv"')
    assert fetch(url, tmp_path).path == tmp_path / "evil_name.csv"


def test_redirect_gives_the_final_name(host: FakeHost, tmp_path: Path) -> None:
    host.file("/files/real-name.csv", BODY)
    url = host.redirect("/download", "/files/real-name.csv", status=307)
    fetched = fetch(url, tmp_path)
    assert fetched.path.name == "real-name.csv" and fetched.path.read_bytes() == BODY


def test_limits_and_policy_come_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlmesh_acquire.safety import FetchLimits, NetworkPolicy
    from mlmesh_common.settings import Settings

    for key, value in {"MLMESH_ACQUIRE_STALL_TIMEOUT_S": "2.5", "MLMESH_ACQUIRE_MAX_BYTES": "123",
                       "MLMESH_ACQUIRE_ALLOWED_HOSTS": "data.internal, 10.1.0.0/16",
                       "MLMESH_ACQUIRE_ALLOW_PRIVATE": "true"}.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    limits = FetchLimits.from_settings(settings)
    assert (limits.stall_timeout_s, limits.max_bytes) == (2.5, 123)
    policy = NetworkPolicy.from_settings(settings)
    assert policy.allow_private and policy.allowed_names == ("data.internal",)
    assert [str(n) for n in policy.allowed_networks] == ["10.1.0.0/16"]


def test_range_not_satisfiable_at_the_end_means_complete(host: FakeHost, tmp_path: Path) -> None:
    def over_announcing(h, fake) -> None:
        if h.headers.get("Range") == f"bytes={len(BODY)}-":
            h.send_response(416)
            h.send_header("Content-Range", f"bytes */{len(BODY)}")
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        h.send_response(200)
        h.send_header("ETag", '"v1"')
        h.send_header("Content-Length", str(len(BODY) + 10))  # claims 10 bytes too many
        h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.write(BODY)
        h.close_connection = True

    url = host.route("/t.csv", over_announcing)
    assert fetch(url, tmp_path).path.read_bytes() == BODY
    assert len(host.requests_to("/t.csv")) == 2
