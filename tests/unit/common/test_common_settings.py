from __future__ import annotations

from pathlib import Path

import pytest

from mlmesh_common.settings import Settings


def test_defaults_live_under_home(tmp_path: Path) -> None:
    s = Settings(home=tmp_path / "h")
    assert s.resolved_ledger_url == f"sqlite:///{tmp_path / 'h' / 'ledger.sqlite3'}"
    assert s.resolved_artifact_root == str(tmp_path / "h" / "artifacts")
    assert s.resolved_optuna_storage.startswith("journal:///")


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLMESH_KAFKA_BOOTSTRAP", "kafka:9092")
    monkeypatch.setenv("MLMESH_LEDGER_URL", "postgresql://u@db/mlmesh")
    monkeypatch.setenv("MLMESH_GROUPS", "tune-worker, tune-coordinator")
    s = Settings()
    assert s.kafka_bootstrap == "kafka:9092"
    assert s.resolved_ledger_url == "postgresql://u@db/mlmesh"
    assert s.group_filter == {"tune-worker", "tune-coordinator"}
