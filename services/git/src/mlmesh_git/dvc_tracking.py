"""Track data files with DVC inside an experiment's worktree and push them to the DVC remote.

DVC runs in a child interpreter (``sys.executable``) through its Python API, with the
worktree as working directory, so its global state never leaks into the service process
and the main worktree is never touched.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

DVC_REMOTE_NAME = "storage"
DVC_GITIGNORE = "/config.local\n/tmp\n/cache\n"
_DVC_SCRIPT = """
import sys
from dvc.repo import Repo
with Repo(".") as repo:
    repo.add(sys.argv[1:])
    repo.push()
"""


class DvcError(RuntimeError):
    """``dvc add`` or ``dvc push`` failed; the message carries DVC's own output."""


def dvc_config_text(remote_url: str) -> str:
    """The committed ``.dvc/config``: a default remote named ``storage``, no analytics."""
    return (
        "[core]\n"
        f"    remote = {DVC_REMOTE_NAME}\n"
        "    analytics = false\n"
        f"['remote \"{DVC_REMOTE_NAME}\"']\n"
        f"    url = {remote_url}\n"
    )


def dvc_repository_files(remote_url: str) -> dict[str, bytes]:
    """The files that make a directory a DVC project with the given default remote."""
    return {
        ".dvc/config": dvc_config_text(remote_url).encode(),
        ".dvc/.gitignore": DVC_GITIGNORE.encode(),
        ".dvcignore": b"# Paths DVC should ignore (same syntax as .gitignore).\n",
    }


def add_and_push(worktree: Path, paths: list[str], timeout_s: float = 600) -> None:
    """``dvc add`` the worktree-relative ``paths`` (writing ``.dvc`` files and ``.gitignore``
    entries next to them), then ``dvc push`` their content to the default remote."""
    if not paths:
        return
    if not (worktree / ".dvc" / "config").is_file():
        raise DvcError(f"{worktree} has no .dvc/config; write dvc_repository_files() first")
    local_remote = _local_remote(worktree)
    if local_remote is not None:
        local_remote.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DVC_NO_ANALYTICS": "1",
           "DVC_SITE_CACHE_DIR": str(worktree / ".dvc" / "tmp" / "site")}
    done = subprocess.run([sys.executable, "-c", _DVC_SCRIPT, *paths], cwd=worktree, env=env,
                          capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip()[-2000:]
        raise DvcError(f"dvc add/push of {', '.join(paths)} failed in {worktree}: {tail}")


def _local_remote(worktree: Path) -> Path | None:
    """The remote's folder when the configured remote is a local path (created on demand)."""
    for line in (worktree / ".dvc" / "config").read_text().splitlines():
        key, _, value = line.strip().partition("=")
        if key.strip() == "url":
            url = value.strip()
            if url.startswith("file://"):
                return Path(url[len("file://"):])
            if "://" not in url:
                return Path(url)
    return None
