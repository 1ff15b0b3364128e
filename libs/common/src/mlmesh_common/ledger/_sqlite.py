from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlmesh_common.ledger._base import Ledger, common_schema


class SQLiteLedger(Ledger):
    """The embedded default: one SQLite file (WAL) shared by the processes of one machine."""

    placeholder = "?"
    row_lock_clause = ""  # BEGIN IMMEDIATE already holds the database's write lock

    def __init__(self, path: Path | str) -> None:
        super().__init__()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, timeout=60, check_same_thread=False,
                                     isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=60000")
        self.migrate()

    def _schema(self) -> Sequence[str]:
        return common_schema("INTEGER PRIMARY KEY AUTOINCREMENT", real="REAL", blob="BLOB")

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            else:
                cur.execute("COMMIT")
            finally:
                cur.close()

    def close(self) -> None:
        self._conn.close()
