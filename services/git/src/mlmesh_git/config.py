"""Settings of the git service, read from ``MLMESH_GIT_*`` / ``MLMESH_DVC_REMOTE`` variables.

Credentials (``MLMESH_GIT_TOKEN``, ``MLMESH_GIT_PR_TOKEN``) are kept out of ``repr`` so a
logged config never shows them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

DEFAULT_AUTHOR = "mlmesh <mlmesh@localhost>"
PR_PROVIDERS = ("github", "gitlab")


class GitConfigError(ValueError):
    """A git service setting is missing or malformed."""


@dataclass(frozen=True)
class PullRequestConfig:
    """Where to open a pull (GitHub) or merge (GitLab) request for each experiment."""

    provider: str
    api_url: str
    repository: str
    token: str = field(repr=False)
    base_branch: str = "main"


@dataclass(frozen=True)
class GitConfig:
    """Everything the git service needs to record an experiment."""

    repo_path: Path
    dvc_remote: str
    remote_url: str = ""
    username: str = ""
    token: str = field(default="", repr=False)
    author: str = DEFAULT_AUTHOR
    pull_request: PullRequestConfig | None = None

    @classmethod
    def from_env(cls, repo_path: Path, home: Path,
                 env: Mapping[str, str] | None = None) -> GitConfig:
        """Build the config from the environment (``env`` defaults to ``os.environ``)."""
        env = os.environ if env is None else env
        dvc_remote = env.get("MLMESH_DVC_REMOTE", "").strip() or str(home / "dvc-remote")
        remote_url = env.get("MLMESH_GIT_REMOTE", "").strip()
        if remote_url and urlsplit(remote_url).password:
            raise GitConfigError(
                "MLMESH_GIT_REMOTE carries a password or token in the URL; remove it and set "
                "MLMESH_GIT_USERNAME / MLMESH_GIT_TOKEN instead")
        pull_request = _pull_request_from_env(env)
        if pull_request is not None and not remote_url:
            raise GitConfigError(
                "MLMESH_GIT_PR_PROVIDER is set but MLMESH_GIT_REMOTE is empty; a pull request "
                "needs the branch pushed, so set the remote or unset the provider")
        return cls(repo_path=Path(repo_path), dvc_remote=dvc_remote, remote_url=remote_url,
                   username=env.get("MLMESH_GIT_USERNAME", "").strip(),
                   token=env.get("MLMESH_GIT_TOKEN", "").strip(),
                   author=env.get("MLMESH_GIT_AUTHOR", "").strip() or DEFAULT_AUTHOR,
                   pull_request=pull_request)


def _pull_request_from_env(env: Mapping[str, str]) -> PullRequestConfig | None:
    provider = env.get("MLMESH_GIT_PR_PROVIDER", "").strip().lower()
    if not provider:
        return None
    if provider not in PR_PROVIDERS:
        raise GitConfigError(f"MLMESH_GIT_PR_PROVIDER={provider!r} is not supported; "
                             f"use one of {', '.join(PR_PROVIDERS)} or leave it empty")
    values = {name: env.get(f"MLMESH_GIT_PR_{name}", "").strip()
              for name in ("API_URL", "REPO", "TOKEN")}
    missing = [f"MLMESH_GIT_PR_{name}" for name, value in values.items() if not value]
    if missing:
        raise GitConfigError(f"pull requests via {provider} need {', '.join(missing)}; "
                             "set them or unset MLMESH_GIT_PR_PROVIDER")
    return PullRequestConfig(provider=provider, api_url=values["API_URL"].rstrip("/"),
                             repository=values["REPO"], token=values["TOKEN"],
                             base_branch=env.get("MLMESH_GIT_PR_BASE", "").strip() or "main")


def redact_url(url: str) -> str:
    """The URL without any user or password part (safe for events and logs)."""
    if not url or "://" not in url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def redact_text(text: str, *secrets: str) -> str:
    """``text`` with every secret and every URL userinfo replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return re.sub(r"(://)[^/@\s]+@", r"\1***@", text)
