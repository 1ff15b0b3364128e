"""Open a pull request (GitHub) or merge request (GitLab) for an experiment branch.

Idempotent: an existing request for the branch (open, merged or closed) is returned
instead of opening a second one.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx

from mlmesh_git.config import PullRequestConfig, redact_text


class PullRequestError(ValueError):
    """The provider refused the request (bad token, unknown repository, invalid payload)."""


def open_pull_request(config: PullRequestConfig, branch: str, title: str, body: str,
                      timeout_s: float = 30.0) -> str:
    """The web URL of the request merging ``branch`` into the configured base branch."""
    if config.provider == "github":
        return _github(config, branch, title, body, timeout_s)
    if config.provider == "gitlab":
        return _gitlab(config, branch, title, body, timeout_s)
    raise PullRequestError(f"unknown pull-request provider {config.provider!r}; "
                           "use github or gitlab")


def _github(config: PullRequestConfig, branch: str, title: str, body: str,
            timeout_s: float) -> str:
    owner = config.repository.split("/", 1)[0]
    headers = {"Authorization": f"Bearer {config.token}",
               "Accept": "application/vnd.github+json",
               "X-GitHub-Api-Version": "2022-11-28"}
    base = f"{config.api_url}/repos/{config.repository}/pulls"
    with httpx.Client(headers=headers, timeout=timeout_s) as client:
        existing = _checked(client.get(base, params={"head": f"{owner}:{branch}",
                                                     "state": "all"}), config)
        if existing:
            return str(existing[0]["html_url"])
        created = _checked(client.post(base, json={
            "title": title, "head": branch, "base": config.base_branch, "body": body,
            "maintainer_can_modify": True}), config)
        return str(created["html_url"])


def _gitlab(config: PullRequestConfig, branch: str, title: str, body: str,
            timeout_s: float) -> str:
    headers = {"PRIVATE-TOKEN": config.token}
    base = f"{config.api_url}/projects/{quote(config.repository, safe='')}/merge_requests"
    with httpx.Client(headers=headers, timeout=timeout_s) as client:
        existing = _checked(client.get(base, params={"source_branch": branch,
                                                     "target_branch": config.base_branch}),
                            config)
        if existing:
            return str(existing[0]["web_url"])
        created = _checked(client.post(base, json={
            "source_branch": branch, "target_branch": config.base_branch, "title": title,
            "description": body, "remove_source_branch": False}), config)
        return str(created["web_url"])


def _checked(response: httpx.Response, config: PullRequestConfig):
    """The JSON body; 4xx -> PullRequestError naming the cause, 5xx -> httpx error (retried)."""
    if 400 <= response.status_code < 500:
        detail = redact_text(response.text[:500], config.token)
        hint = {401: "check MLMESH_GIT_PR_TOKEN", 403: "the token lacks permission",
                404: "check MLMESH_GIT_PR_API_URL and MLMESH_GIT_PR_REPO"}.get(
                    response.status_code, "check the request")
        raise PullRequestError(
            f"{config.provider} refused {response.request.method} {response.request.url.path} "
            f"with {response.status_code} ({hint}): {detail}")
    response.raise_for_status()
    return response.json()
