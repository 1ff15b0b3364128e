"""API keys, verification, roles, scope, rate limits, key management and the ledger's scoped
queries as plain functions (SQLite ledger in a temp folder)."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest

from mlmesh_common import apikeys
from mlmesh_common.artifacts._local import LocalArtifactStore
from mlmesh_common.ledger import ApiKeyRecord, AuditRecord, DeadLetterRecord, open_ledger
from mlmesh_gateway import artifacts, ops
from mlmesh_gateway.auth import (
    Authenticator,
    Forbidden,
    Principal,
    RateLimited,
    RateLimiter,
    Unauthenticated,
)
from mlmesh_gateway.keys import InvalidKeyRequest, KeyNotFound, Keys
from mlmesh_gateway.security import SYSTEM

PEPPER = b"pepper"


@pytest.fixture
def ledger(tmp_path: Path):
    ledger = open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    yield ledger
    ledger.close()


def test_key_format_hash_and_redaction() -> None:
    key_id, key = apikeys.generate()
    assert key.startswith(f"mlm_{key_id}_") and len(key) > 50
    assert apikeys.key_id_of(key) == key_id
    assert apikeys.matches(PEPPER, key, apikeys.digest(PEPPER, key))
    assert not apikeys.matches(b"other pepper", key, apikeys.digest(PEPPER, key))
    assert key not in apikeys.digest(PEPPER, key)
    foreign = "an-operator-chosen-admin-key-123"
    assert apikeys.key_id_of(foreign) == apikeys.key_id_of(foreign)
    assert not apikeys.key_id_of(foreign).startswith("mlm")
    for bad in ("", "short", "has spaces but is long enough", "mlm_zz"):
        with pytest.raises(apikeys.InvalidApiKey):
            apikeys.key_id_of(bad)
    assert apikeys.redact(f"got {key}!") == f"got mlm_{key_id}_***!"


def test_admin_key_file_is_private_and_stable(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLMESH_ADMIN_API_KEY", raising=False)
    path = apikeys.ensure_admin_key_file(tmp_path)
    key = apikeys.read_admin_key(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and key.startswith("mlm_")
    apikeys.ensure_admin_key_file(tmp_path)
    assert apikeys.read_admin_key(tmp_path) == key == apikeys.bootstrap_admin_key(tmp_path)
    monkeypatch.setenv("MLMESH_ADMIN_API_KEY", "from-the-environment-0123456789")
    assert apikeys.bootstrap_admin_key(tmp_path) == "from-the-environment-0123456789"
    monkeypatch.delenv("MLMESH_API_KEY_PEPPER", raising=False)
    pepper = apikeys.load_pepper(tmp_path)
    assert pepper == apikeys.load_pepper(tmp_path)
    assert stat.S_IMODE((tmp_path / apikeys.PEPPER_FILE).stat().st_mode) == 0o600
    monkeypatch.setenv("MLMESH_API_KEY_PEPPER", "shared")
    assert apikeys.load_pepper(tmp_path) == b"shared"


def test_rate_limiter_refills() -> None:
    now = [0.0]
    limiter = RateLimiter(rate_per_s=2, burst=3, clock=lambda: now[0])
    for _ in range(3):
        limiter.take("k")
    with pytest.raises(RateLimited) as limited:
        limiter.take("k")
    assert limited.value.retry_after_s >= 1
    limiter.take("other")  # buckets are per caller
    now[0] = 0.5
    limiter.take("k")  # one token back after half a second at 2/s
    with pytest.raises(RateLimited):
        limiter.take("k")


def test_roles_and_scope() -> None:
    viewer = Principal("v", "v", "viewer", ("a",))
    scientist = Principal("s", "s", "scientist", ("a", "b"))
    admin = Principal("x", "x", "admin", ("*",))
    assert viewer.has("experiments.read") and not viewer.has("experiments.submit")
    assert scientist.has("webhooks.write") and not scientist.has("dlq.write")
    assert admin.has("keys.manage") and admin.sees("anything") and admin.scope() is None
    assert scientist.sees("b") and not scientist.sees("c") and scientist.scope() == ["a", "b"]
    assert scientist.covers(["a"]) and not scientist.covers(["*"])
    assert not scientist.covers(["a", "c"])
    with pytest.raises(Forbidden, match="scientist"):
        viewer.require("experiments.cancel")


def test_authenticator_verifies_caches_and_forgets(ledger) -> None:
    key_id, key = apikeys.generate()
    ledger.add_api_key(ApiKeyRecord(key_id, "k", "scientist", ["a"],
                                    apikeys.digest(PEPPER, key), time.time()))
    auth = Authenticator(lambda: ledger, PEPPER, RateLimiter(100, 100), cache_s=60)
    principal = auth.verify(key)
    assert (principal.key_id, principal.role, principal.projects) == (key_id, "scientist",
                                                                       ("a",))
    assert auth.cached(key) == principal
    with pytest.raises(Unauthenticated, match="not known"):
        auth.verify(f"mlm_{key_id}_" + "x" * 43)  # right id, wrong secret
    with pytest.raises(Unauthenticated, match="send an API key"):
        auth.verify("")
    ledger.revoke_api_key(key_id)
    assert auth.verify(key) == principal  # cached until forgotten or expired
    auth.forget(key_id)
    with pytest.raises(Unauthenticated, match="revoked"):
        auth.verify(key)
    failing = RateLimiter(100, 2)
    auth = Authenticator(lambda: ledger, PEPPER, failing)
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            auth.authenticate("mlm_0123456789ab_" + "y" * 43, client="1.2.3.4")
    with pytest.raises(RateLimited):  # guessing is rate-limited per client address
        auth.authenticate("mlm_0123456789ab_" + "y" * 43, client="1.2.3.4")


async def test_keys_stay_within_the_creators_scope(ledger) -> None:
    keys = Keys(lambda: ledger, PEPPER)
    admin_a = Principal("aa", "aa", "admin", ("a",))
    with pytest.raises(InvalidKeyRequest, match="scope"):
        await keys.create(admin_a, "x", "viewer", ["b"])
    with pytest.raises(InvalidKeyRequest, match="scope"):
        await keys.create(admin_a, "x", "admin", ["*"])
    with pytest.raises(InvalidKeyRequest, match="role"):
        await keys.create(admin_a, "x", "root", ["a"])
    with pytest.raises(Forbidden):
        await keys.create(Principal("s", "s", "scientist", ("a",)), "x", "viewer", ["a"])
    record, key = await keys.create(admin_a, "ci", "viewer", ["a"])
    global_record, _ = await keys.create(SYSTEM, "all", "viewer", ["*"])
    assert record.digest == apikeys.digest(PEPPER, key) and key not in record.digest
    assert [r.id for r in await keys.list(admin_a)] == [record.id]
    with pytest.raises(KeyNotFound):
        await keys.revoke(admin_a, global_record.id)
    assert (await keys.revoke(admin_a, record.id)).revoked_at is not None
    assert keys.bootstrap("bootstrap-admin-key-0123456789") == keys.bootstrap(
        "bootstrap-admin-key-0123456789")
    boot = ledger.get_api_key(apikeys.key_id_of("bootstrap-admin-key-0123456789"))
    assert boot.role == "admin" and boot.projects == ["*"]


def test_ledger_scoped_queries(ledger) -> None:
    for experiment, project in (("ea", "a"), ("eb", "b"), ("ec", "c")):
        ledger.create_experiment(experiment, project, {})
        ledger.record_dead_letter(DeadLetterRecord(
            f"l-{experiment}", "t.dlq", "t", experiment, "e", "g", "E", "m", "", 1, time.time(),
            b"", b"", {}, "open", time.time()))
    assert {r.project for r in ledger.list_experiments(projects=["a", "b"])} == {"a", "b"}
    assert ledger.list_experiments(projects=[]) == []
    assert [d.id for d in ledger.list_dead_letters(projects=["c"])] == ["l-ec"]
    assert ledger.count_dead_letters(["a"]) == {"t": 1} and ledger.count_dead_letters() == {
        "t": 3}
    for project in ("a", "b"):
        ledger.record_audit(AuditRecord(0, time.time(), "k", "admin", "x", "t", project, "ok",
                                        200))
    assert [e.project for e in ledger.list_audit(projects=["b"])] == ["b"]
    assert len(ledger.list_audit()) == 2


def test_artifacts_stay_inside_the_experiment(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    mine = store.root / "projects/a/experiments/e1/docs"
    mine.mkdir(parents=True)
    (mine / "report.html").write_text("ok")
    other = store.root / "projects/b/experiments/e2/docs"
    other.mkdir(parents=True)
    (other / "secret.txt").write_text("no")
    assert artifacts.fetch(store, "a", "e1", "docs/report.html").path.read_text() == "ok"
    assert artifacts.list_files(store, "a", "e1") == [{"path": "docs/report.html", "size": 2}]
    for sneaky in ("../../../b/experiments/e2/docs/secret.txt", "docs/../../e2/x", "",
                   "/etc/passwd", "docs/missing.html"):
        with pytest.raises(artifacts.ArtifactNotFound):
            artifacts.fetch(store, "a", "e1", sneaky)
    uri = (mine / "report.html").as_uri()
    assert artifacts.relative_path(uri, "a", "e1") == "docs/report.html"
    assert artifacts.relative_path(uri, "b", "e1") == ""


def test_ops_reads_metrics_and_targets(tmp_path: Path) -> None:
    text = ("mlmesh_events_in_total{group=\"g\",topic=\"t\"} 5.0\n"
            "mlmesh_events_in_total{group=\"g\",topic=\"u\"} 2.0\n"
            "mlmesh_events_out_total{topic=\"t\"} 3.0\n"
            "mlmesh_breaker_state{breaker=\"mlflow\"} 2.0\n")
    summary = ops.summarize_metrics(text)
    assert summary["events_in"] == 7 and summary["events_out"] == 3
    assert summary["breakers"] == {"mlflow": "open"}
    (tmp_path / "mesh.json").write_text('{"processes": {"gateway-0": {"port": 1}, '
                                        '"mlflow": {"port": 2}, "prep-0": {"port": 3}}}')
    found = ops.targets(tmp_path, "extra=http://10.0.0.1:9000/,bad=ftp://x")
    assert [(t.name, t.url) for t in found] == [("extra", "http://10.0.0.1:9000"),
                                               ("prep-0", "http://127.0.0.1:3")]
