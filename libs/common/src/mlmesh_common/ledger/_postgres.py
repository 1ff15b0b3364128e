from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from mlmesh_common.ledger._base import Ledger, common_schema


class PostgresLedger(Ledger):
    """The ledger at scale: PostgreSQL through psycopg (one connection, serialized)."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self._conn = psycopg.connect(url, autocommit=False)
        self.migrate()

    def _schema(self) -> Sequence[str]:
        return common_schema("BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY")

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        with self._lock:
            if self._conn.closed or self._conn.broken:
                self._conn = psycopg.connect(self.url, autocommit=False)
            try:
                with self._conn.transaction(), self._conn.cursor() as cur:
                    yield cur
            except psycopg.errors.UniqueViolation:
                raise

    def migrate(self) -> None:
        # Concurrent first starts race on CREATE TABLE IF NOT EXISTS; serialize with a lock.
        with self._cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(727165)")
            for stmt in self._schema():
                cur.execute(stmt)

    def close(self) -> None:
        self._conn.close()
