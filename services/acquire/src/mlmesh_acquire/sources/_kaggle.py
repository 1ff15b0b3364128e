"""``kaggle://owner/dataset[/file]``: a dataset (or one file of it) through the Kaggle API.

``GET {api}/datasets/download/{owner}/{dataset}[/{file}]`` with HTTP basic auth answers
with the dataset as a ZIP archive (usually through a redirect to a signed storage URL).
The API root is ``https://www.kaggle.com/api/v1`` unless ``MLMESH_KAGGLE_API_URL`` says
otherwise. The token comes from ``KAGGLE_USERNAME`` + ``KAGGLE_KEY``, else from the
``kaggle.json`` named by ``MLMESH_KAGGLE_CONFIG``, else ``$KAGGLE_CONFIG_DIR/kaggle.json``,
``~/.kaggle/kaggle.json`` or ``~/.config/kaggle/kaggle.json``. It is sent to the API
host only, never to the storage host a download redirects to.

Options: ``kaggle_version`` (a dataset version number), ``kaggle_file`` (one file).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote, urlsplit

from mlmesh_acquire.safety import redact_url
from mlmesh_acquire.source_errors import (
    MissingCredentialsError,
    SourceNotFoundError,
    UnsupportedSourceError,
)
from mlmesh_acquire.sources._base import FetchContext, FetchedFile, Source
from mlmesh_acquire.sources._http import Credentials, HttpSession
from mlmesh_acquire.sources._registry import register_source

DEFAULT_KAGGLE_API = "https://www.kaggle.com/api/v1"


@register_source
class KaggleSource(Source):
    """A Kaggle dataset, downloaded as the ZIP archive the Kaggle API serves."""

    schemes = ("kaggle",)

    def dependency(self, uri: str) -> str:
        return "kaggle"

    def fetch(self, uri: str, ctx: FetchContext) -> FetchedFile:
        owner, dataset, file_name = parse_kaggle_uri(uri)
        file_name = ctx.option("kaggle_file") or file_name
        version = ctx.option("kaggle_version")
        if version is not None and not version.isdigit():
            raise UnsupportedSourceError(
                f"source option kaggle_version={version!r} is not a version number; give "
                "the number shown on the dataset's page")
        api, policy = ctx.endpoint(("MLMESH_KAGGLE_API_URL",), DEFAULT_KAGGLE_API)
        user, key = kaggle_credentials(ctx.env)
        token = base64.b64encode(f"{user}:{key}".encode()).decode()
        credentials = Credentials.for_url(api, {"Authorization": f"Basic {token}"})
        url = f"{api}/datasets/download/{quote(owner)}/{quote(dataset)}"
        if file_name:
            url += f"/{quote(file_name)}"
        if version:
            url += f"?datasetVersionNumber={version}"
        label = f"kaggle://{owner}/{dataset}" + (f"/{file_name}" if file_name else "")
        with HttpSession(ctx, policy=policy, credentials=credentials) as session:
            try:
                fetched = session.download(url, ctx.dest_dir, label=label,
                                           filename=None if file_name else f"{dataset}.zip")
            except SourceNotFoundError as exc:
                raise _explain(exc, label) from None
        meta = {"source": "kaggle", "owner": owner, "dataset": dataset,
                "api": redact_url(api), "file": file_name, "version": version}
        return replace(fetched, metadata={k: v for k, v in meta.items() if v})


def parse_kaggle_uri(uri: str) -> tuple[str, str, str | None]:
    """``(owner, dataset, file or None)`` of ``kaggle://owner/dataset[/file]``."""
    parts = urlsplit(uri)
    owner = parts.netloc.rpartition("@")[2]
    segments = [s for s in parts.path.split("/") if s]
    if not owner or not segments:
        raise UnsupportedSourceError(
            f"{redact_url(uri)!r} is not a Kaggle dataset; use kaggle://owner/dataset (as in "
            "kaggle.com/datasets/owner/dataset)")
    return owner, segments[0], "/".join(segments[1:]) or None


def kaggle_credentials(env: Mapping[str, str]) -> tuple[str, str]:
    """``(username, key)`` from the environment or a kaggle.json file."""
    user, key = env.get("KAGGLE_USERNAME"), env.get("KAGGLE_KEY")
    if user and key:
        return user, key
    named = env.get("MLMESH_KAGGLE_CONFIG")
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise MissingCredentialsError(
                f"MLMESH_KAGGLE_CONFIG names {path}, which does not exist; point it at a "
                "kaggle.json file")
        return _read_token_file(path)
    home = Path(env.get("HOME") or Path.home())
    candidates = [home / ".kaggle" / "kaggle.json", home / ".config" / "kaggle" / "kaggle.json"]
    if env.get("KAGGLE_CONFIG_DIR"):
        candidates.insert(0, Path(env["KAGGLE_CONFIG_DIR"]) / "kaggle.json")
    for path in candidates:
        if path.is_file():
            return _read_token_file(path)
    raise MissingCredentialsError(
        "kaggle:// needs a Kaggle API token: set KAGGLE_USERNAME and KAGGLE_KEY, or put "
        "kaggle.json (from kaggle.com > Settings > API) in ~/.kaggle/ or name it with "
        "MLMESH_KAGGLE_CONFIG")


def _read_token_file(path: Path) -> tuple[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        user, key = data["username"], data["key"]
    except (OSError, ValueError, KeyError, TypeError):
        raise MissingCredentialsError(
            f"{path} is not a Kaggle token file; it must be JSON with \"username\" and "
            "\"key\" (download it again from kaggle.com > Settings > API)") from None
    if not (isinstance(user, str) and isinstance(key, str) and user and key):
        raise MissingCredentialsError(f"{path} has an empty username or key; download the "
                                      "token again from kaggle.com > Settings > API")
    return user, key


def _explain(exc: SourceNotFoundError, label: str) -> SourceNotFoundError:
    if exc.status == 401:
        return SourceNotFoundError(
            f"Kaggle refused the credentials for {label} (HTTP 401): check KAGGLE_USERNAME "
            "and KAGGLE_KEY or the kaggle.json token, which may have expired", status=401)
    if exc.status == 403:
        return SourceNotFoundError(
            f"Kaggle refused access to {label} (HTTP 403): sign in on kaggle.com with this "
            "account and accept the dataset's rules, or check that it is public", status=403)
    if exc.status == 404:
        return SourceNotFoundError(
            f"Kaggle has no {label} (HTTP 404): check the owner and dataset names (as in "
            "kaggle.com/datasets/owner/dataset) and the file or version", status=404)
    return exc
