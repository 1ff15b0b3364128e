from __future__ import annotations

from mlmesh_common.ledger._base import Ledger


def open_ledger(url: str) -> Ledger:
    """Open the ledger at `url`: sqlite:///path or postgresql://user@host/db."""
    if url.startswith("sqlite:///"):
        from mlmesh_common.ledger._sqlite import SQLiteLedger

        return SQLiteLedger(url.removeprefix("sqlite:///"))
    if url.startswith(("postgresql://", "postgres://")):
        from mlmesh_common.ledger._postgres import PostgresLedger

        return PostgresLedger(url)
    raise ValueError(f"unsupported ledger URL {url!r}: use sqlite:///<path> or "
                     "postgresql://<user>@<host>/<db> (MLMESH_LEDGER_URL)")
