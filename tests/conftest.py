"""Shared fixtures: a real Tansu broker, mesh settings in a temp home, a PostgreSQL database."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlmesh_common.broker import create_topics, free_port, start_tansu
from mlmesh_common.settings import Settings

PG_ADMIN_URL = os.environ.get("MLMESH_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Tansu broker for the session with every registry topic created."""
    if external := os.environ.get("MLMESH_TEST_KAFKA_BOOTSTRAP"):
        asyncio.run(create_topics(external))
        yield external
        return
    port = free_port()
    proc = start_tansu(port, tmp_path_factory.mktemp("tansu") / "tansu.log")
    bootstrap = f"127.0.0.1:{port}"
    asyncio.run(create_topics(bootstrap, partitions=2))
    yield bootstrap
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def mesh_settings(tmp_path: Path, kafka_bootstrap: str) -> Settings:
    """Settings for one test: its own home, ledger and artifacts, fast retries and breakers."""
    return Settings(home=tmp_path / "home", kafka_bootstrap=kafka_bootstrap, max_attempts=3,
                    retry_initial_s=0.1, retry_max_s=0.5, breaker_fail_max=2,
                    breaker_reset_s=1.0, session_timeout_ms=6000, heartbeat_interval_ms=1000,
                    shutdown_grace_s=5, instance=f"test-{uuid.uuid4().hex[:6]}")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards."""
    psycopg = pytest.importorskip("psycopg")
    name = f"mlmesh_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
