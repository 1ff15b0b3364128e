"""How the CLI finds its API key, and that `mlmesh keys` is wired."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlmesh_cli.__main__ import app
from mlmesh_cli.client import GatewayClient, resolve_api_key
from mlmesh_common import apikeys


def test_key_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("MLMESH_API_KEY", "MLMESH_ADMIN_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    assert resolve_api_key(tmp_path) == ""
    apikeys.ensure_admin_key_file(tmp_path)
    from_home = apikeys.read_admin_key(tmp_path)
    assert resolve_api_key(tmp_path) == from_home
    monkeypatch.setenv("MLMESH_ADMIN_API_KEY", "admin-from-env-0123456789abc")
    assert resolve_api_key(tmp_path) == "admin-from-env-0123456789abc"
    monkeypatch.setenv("MLMESH_API_KEY", "mine")
    assert resolve_api_key(tmp_path) == "mine"
    client = GatewayClient("http://127.0.0.1:9", api_key="explicit")
    assert client._http.headers["authorization"] == "Bearer explicit"


def test_keys_commands_exist() -> None:
    result = CliRunner().invoke(app, ["keys", "--help"])
    assert result.exit_code == 0
    for command in ("create", "list", "revoke"):
        assert command in result.output
    created = CliRunner().invoke(app, ["keys", "create", "--help"])
    assert "--role" in created.output and "--project" in created.output
