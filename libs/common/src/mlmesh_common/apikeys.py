"""API keys: their format, how they are hashed, and the embedded mesh's admin key file.

A key reads `mlm_<id>_<secret>`: `id` (12 hex characters) finds the stored record, `secret`
(32 random bytes, base64url) is what makes it a credential. Keys are random and long, so a
keyed SHA-256 (HMAC with a server-side pepper) is the right hash: a stolen ledger alone
cannot be used to check guesses, and no slow KDF is needed. Comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

#: Roles, weakest first: viewer reads; scientist also submits, cancels and manages webhooks;
#: admin also manages keys, reads the audit log and replays or purges dead letters.
ROLES = ("viewer", "scientist", "admin")
#: The project scope of a key that may act on every project.
ALL_PROJECTS = "*"
ADMIN_KEY_FILE = "admin.key"
PEPPER_FILE = "api-key-pepper"
_FORMAT = re.compile(r"^mlm_([0-9a-f]{12})_([A-Za-z0-9_-]{20,})$")
MIN_FOREIGN_KEY_CHARS = 24


class InvalidApiKey(ValueError):
    """The string is not an API key this gateway can check."""


def generate() -> tuple[str, str]:
    """A new key: (key id, the full key to hand out once)."""
    key_id = secrets.token_hex(6)
    return key_id, f"mlm_{key_id}_{secrets.token_urlsafe(32)}"


def key_id_of(key: str) -> str:
    """The lookup id of `key`.

    Keys minted here carry their id; a long operator-chosen key (MLMESH_ADMIN_API_KEY) gets a
    stable id derived from its digest, so any sufficiently random string can bootstrap.
    """
    match = _FORMAT.match(key)
    if match:
        return match.group(1)
    if len(key) < MIN_FOREIGN_KEY_CHARS or not key.isprintable() or " " in key:
        raise InvalidApiKey("an API key looks like mlm_<12 hex>_<secret> (or, for "
                            f"MLMESH_ADMIN_API_KEY, any {MIN_FOREIGN_KEY_CHARS}+ printable "
                            "characters without spaces)")
    return "x" + hashlib.sha256(key.encode()).hexdigest()[:11]


def digest(pepper: bytes, key: str) -> str:
    """The stored form of `key`: hex HMAC-SHA256 under the server's pepper."""
    return hmac.new(pepper, key.encode(), hashlib.sha256).hexdigest()


def matches(pepper: bytes, key: str, stored_digest: str) -> bool:
    """Constant-time check of `key` against a stored digest."""
    return hmac.compare_digest(digest(pepper, key), stored_digest)


def _write_secret_file(path: Path, text: str) -> bool:
    """Create `path` with mode 0600 holding `text`; False when it already exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as out:
        out.write(text + "\n")
    return True


def load_pepper(home: Path) -> bytes:
    """The server's pepper: MLMESH_API_KEY_PEPPER, else a random one kept in the home (0600).

    Set MLMESH_API_KEY_PEPPER (same value on every gateway replica) when the ledger is shared
    (PostgreSQL): keys hashed by one replica must verify on another.
    """
    if pepper := os.environ.get("MLMESH_API_KEY_PEPPER"):
        return pepper.encode()
    path = home / PEPPER_FILE
    _write_secret_file(path, secrets.token_urlsafe(32))
    return path.read_text().strip().encode()


def admin_key_path(home: Path) -> Path:
    """Where `mlmesh up` keeps the embedded mesh's admin key."""
    return home.expanduser().resolve() / ADMIN_KEY_FILE


def ensure_admin_key_file(home: Path) -> Path:
    """Create the mesh home's admin key file (0600) unless it exists; returns its path."""
    path = admin_key_path(home)
    _write_secret_file(path, generate()[1])
    return path


def read_admin_key(home: Path) -> str:
    """The admin key in the mesh home, or '' when there is none."""
    path = admin_key_path(home)
    try:
        return path.read_text().strip()
    except (FileNotFoundError, PermissionError, NotADirectoryError):
        return ""


def bootstrap_admin_key(home: Path) -> str:
    """The key the gateway installs as admin at start: MLMESH_ADMIN_API_KEY, else the mesh
    home's admin key file, else '' (then only keys already in the ledger work)."""
    return os.environ.get("MLMESH_ADMIN_API_KEY", "").strip() or read_admin_key(home)


def redact(text: str) -> str:
    """`text` with every minted API key's secret part replaced (for messages and logs)."""
    return re.sub(r"mlm_([0-9a-f]{12})_[A-Za-z0-9_-]+", r"mlm_\1_***", text)
