"""The SSRF guard: non-public addresses refused (first URL and every redirect), loops and
overlong chains refused, the connection made to the very address that was checked."""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import replace
from pathlib import Path

import pytest
from source_fakes import FAST_LIMITS, LOCAL_POLICY, FakeHost, fake_host

from mlmesh_acquire.fetch import fetch_source
from mlmesh_acquire.safety import NetworkPolicy, address_kind, redact_url
from mlmesh_acquire.source_errors import RedirectLoopError, UnsafeSourceError


@pytest.fixture
def host():
    with fake_host() as h:
        yield h


def fetch(url: str, dest: Path, **kw):
    kw.setdefault("policy", LOCAL_POLICY)
    kw.setdefault("limits", FAST_LIMITS)
    return fetch_source(url, dest, **kw)


@pytest.mark.parametrize("address, kind", [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("10.0.0.1", "private"),
    ("172.16.5.4", "private"), ("192.168.1.1", "private"), ("fd12:3456::1", "private"),
    ("169.254.169.254", "cloud metadata"), ("169.254.10.10", "link-local"),
    ("fe80::1", "link-local"), ("fd00:ec2::254", "cloud metadata"),
    ("224.0.0.1", "multicast"), ("ff02::1", "multicast"), ("0.0.0.0", "unspecified"),
    ("::", "unspecified"), ("100.64.0.1", "non-public (shared or special-purpose)"),
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:169.254.169.254", "cloud metadata"), ("64:ff9b::a00:1", "private"),
    ("8.8.8.8", None), ("2001:4860:4860::8888", None), ("::ffff:8.8.8.8", None),
])
def test_address_kinds(address: str, kind: str | None) -> None:
    assert address_kind(ipaddress.ip_address(address)) == kind


def test_default_policy_refuses_loopback_even_for_a_live_server(host: FakeHost,
                                                                tmp_path: Path) -> None:
    url = host.file("/t.csv", b"a,b\n1,2\n")
    with pytest.raises(UnsafeSourceError, match=r"address 127\.0\.0\.1, a loopback address"):
        fetch_source(url, tmp_path, policy=NetworkPolicy(), limits=FAST_LIMITS)
    assert host.seen == []  # refused before connecting


@pytest.mark.parametrize("target, expected", [
    ("http://10.0.0.1/data.csv", r"10\.0\.0\.1, a private address"),
    ("http://169.254.169.254/latest/meta-data/iam/", "cloud metadata"),
    ("http://[fd00:ec2::254]/latest/", "cloud metadata"),
    ("http://metadata.google.internal/computeMetadata/v1/", "cloud metadata service"),
    ("http://0.0.0.0:8080/", "an unspecified address"),
])
def test_redirect_to_a_non_public_address_is_refused(host: FakeHost, tmp_path: Path,
                                                     target: str, expected: str) -> None:
    url = host.redirect("/go", target)
    started = time.monotonic()
    with pytest.raises(UnsafeSourceError, match=expected) as info:
        fetch(url, tmp_path)
    assert f"redirect from {url} to {redact_url(target)} refused" in str(info.value)
    assert time.monotonic() - started < 1.0  # refused without trying to connect
    assert len(host.requests_to("/go")) == 1  # permanent: not retried
    assert not any(tmp_path.iterdir())


def test_allow_private_opens_private_ranges_but_never_metadata(host: FakeHost,
                                                                tmp_path: Path) -> None:
    policy = NetworkPolicy(allow_private=True)
    url = host.file("/t.csv", b"a,b\n1,2\n")
    assert fetch(url, tmp_path, policy=policy).size_bytes == 8
    assert policy.vet("10.1.2.3", 80) == ["10.1.2.3"]
    with pytest.raises(UnsafeSourceError, match="cloud metadata"):
        policy.vet("169.254.169.254", 80)
    with pytest.raises(UnsafeSourceError, match="cloud metadata"):
        policy.vet("metadata.google.internal", 80)
    with pytest.raises(UnsafeSourceError, match="multicast"):
        policy.vet("224.0.0.1", 80)
    # only an explicit entry opens the metadata address
    assert NetworkPolicy.parse(allowed_hosts="169.254.169.254").vet("169.254.169.254", 80)


def test_allowed_hosts_take_names_patterns_and_cidrs() -> None:
    policy = NetworkPolicy.parse(allowed_hosts=" 10.0.0.0/8 , data.corp.example, *.minio.lan,"
                                               "[fd00::1]")
    assert policy.vet("10.9.8.7", 443) == ["10.9.8.7"]
    assert policy.vet("fd00::1", 443) == ["fd00::1"]
    with pytest.raises(UnsafeSourceError, match="MLMESH_ACQUIRE_ALLOWED_HOSTS"):
        policy.vet("192.168.0.1", 443)
    assert policy._name_allowed("data.corp.example")
    assert policy._name_allowed("eu.minio.lan") and not policy._name_allowed("minio.lan.evil")


def test_a_name_resolving_to_a_private_address_is_refused(monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    real = socket.getaddrinfo

    def fake(name, port, *args, **kwargs):
        if name == "innocent.example":  # public-looking name, internal address
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.20.30.40", port))]
        return real(name, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    with pytest.raises(UnsafeSourceError,
                       match=r"'innocent.example' resolves to 10\.20\.30\.40, a private"):
        fetch("http://innocent.example/data.csv", tmp_path)


def test_connection_goes_to_the_checked_address(monkeypatch: pytest.MonkeyPatch, host: FakeHost,
                                                tmp_path: Path) -> None:
    """DNS rebinding: the name is resolved once, checked, and that address is dialled.

    The resolver answers 127.0.0.1 (allowed) the first time and 10.0.0.1 afterwards; a
    client that resolved again to connect would dial the second answer.
    """
    real = socket.getaddrinfo
    lookups: list[str] = []

    def rebinding(name, port, *args, **kwargs):
        if name == "rebind.example":
            lookups.append(name)
            address = "127.0.0.1" if len(lookups) == 1 else "10.0.0.1"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
        return real(name, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    host.file("/t.csv", b"a,b\n1,2\n")
    port = host.base_url.rsplit(":", 1)[1]
    fetched = fetch(f"http://rebind.example:{port}/t.csv", tmp_path)
    assert fetched.path.read_bytes() == b"a,b\n1,2\n"
    assert lookups == ["rebind.example"]  # one resolution, the checked one was used
    assert host.seen[0].headers["host"] == f"rebind.example:{port}"  # the name is kept


def test_redirect_loop_is_reported_as_such(host: FakeHost, tmp_path: Path) -> None:
    host.redirect("/a", "/b")
    url = host.redirect("/b", "/a")
    with pytest.raises(RedirectLoopError, match="redirect loop") as info:
        fetch(host.base_url + "/a", tmp_path)
    assert f"{host.base_url}/a -> {url} -> {host.base_url}/a" in str(info.value)
    assert isinstance(info.value, ValueError)  # permanent: straight to the DLQ
    assert len(host.requests_to("/a")) == 1


def test_too_many_redirects(host: FakeHost, tmp_path: Path) -> None:
    for i in range(8):
        host.redirect(f"/r{i}", f"/r{i + 1}")
    with pytest.raises(RedirectLoopError, match="redirects more than 3 times"):
        fetch(host.base_url + "/r0", tmp_path, limits=replace(FAST_LIMITS, max_redirects=3))


def test_redirect_to_another_scheme_is_refused(host: FakeHost, tmp_path: Path) -> None:
    url = host.redirect("/x", "file:///etc/passwd")
    with pytest.raises(UnsafeSourceError, match="redirects to a file: URL"):
        fetch(url, tmp_path)


def test_credentials_stay_with_their_origin(tmp_path: Path) -> None:
    from mlmesh_acquire.sources import Credentials, FetchContext, HttpSession

    with fake_host() as api, fake_host() as storage:
        storage.file("/blob.csv", b"a,b\n1,2\n")
        api.redirect("/download", storage.base_url + "/blob.csv?X-Goog-Signature=sig")
        ctx = FetchContext(dest_dir=tmp_path, policy=LOCAL_POLICY, limits=FAST_LIMITS)
        creds = Credentials.for_url(api.base_url, {"Authorization": "Bearer tok-123"})
        with HttpSession(ctx, credentials=creds) as session:
            fetched = session.download(api.base_url + "/download", tmp_path)
    assert fetched.path.read_bytes() == b"a,b\n1,2\n"
    assert api.seen[0].headers["authorization"] == "Bearer tok-123"
    assert "authorization" not in storage.seen[0].headers
    assert "tok-123" not in repr(creds)


def test_redact_url() -> None:
    assert redact_url("https://u:p@h.example:8443/a/b.csv?token=abc&version=2#frag") == (
        "https://h.example:8443/a/b.csv?token=REDACTED&version=2")
    assert redact_url("s3://bucket/key.csv") == "s3://bucket/key.csv"
    assert redact_url("kaggle://Owner/Data") == "kaggle://Owner/Data"
    assert "sig" not in redact_url("https://s.example/o?X-Goog-Signature=sig&X-Goog-Credential=c")
