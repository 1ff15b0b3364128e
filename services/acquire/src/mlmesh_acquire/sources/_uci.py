"""``uci://<id>`` (or ``uci://<name>``): a dataset of the UCI Machine Learning Repository.

``GET {base}/api/dataset?id={id}`` (or ``?name=``) answers ``{"status": 200, "data": {...}}``
with ``data_url`` (the dataset as one CSV file), ``variables`` (each with a ``role``:
``Feature``, ``Target``, ``ID`` or ``Other``) and ``target_col``; an unknown dataset answers
``{"status": 404, "message": ...}``. The target variables are recorded (the first as the
suggested target), and so are the id columns. The base is
``https://archive.ics.uci.edu`` unless ``MLMESH_UCI_URL`` says otherwise.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

from mlmesh_acquire.safety import redact_url
from mlmesh_acquire.source_errors import SourceError, SourceNotFoundError, UnsupportedSourceError
from mlmesh_acquire.sources._base import FetchContext, FetchedFile, Source
from mlmesh_acquire.sources._http import HttpSession
from mlmesh_acquire.sources._registry import register_source

DEFAULT_UCI_URL = "https://archive.ics.uci.edu"


@register_source
class UCISource(Source):
    """A UCI repository dataset by id or name."""

    schemes = ("uci",)

    def dependency(self, uri: str) -> str:
        return "uci"

    def fetch(self, uri: str, ctx: FetchContext) -> FetchedFile:
        key = parse_uci_uri(uri)
        base, policy = ctx.endpoint(("MLMESH_UCI_URL",), DEFAULT_UCI_URL)
        query = {"id": key} if key.isdigit() else {"name": key}
        url = f"{base}/api/dataset?{urlencode(query)}"
        label = f"uci://{key}"
        with HttpSession(ctx, policy=policy) as session:
            status, body = session.get_json(url, accept_statuses=(404,))
            inner_status = body.get("status") if isinstance(body, dict) else None
            if status == 404 or inner_status not in (None, 200):
                message = (str(body.get("message") or "")[:200]
                           if isinstance(body, dict) else "")
                raise SourceNotFoundError(
                    f"the UCI repository has no dataset {key!r}"
                    f"{f' ({message})' if message else ''}; check the id on "
                    "archive.ics.uci.edu", status=404)
            data = body.get("data") if isinstance(body, dict) else None
            if not isinstance(data, dict):
                raise SourceError(f"the UCI answer for {label} has no data; check "
                                  "MLMESH_UCI_URL")
            data_url = data.get("data_url")
            name = str(data.get("name") or key)
            if not data_url:
                raise SourceNotFoundError(
                    f"UCI dataset {key} ({name}) exists but offers no importable data file; "
                    "download it from its page and use its file URL", status=404)
            fetched = session.download(str(data_url), ctx.dest_dir, label=f"{label} data")
        variables = [v for v in data.get("variables") or [] if isinstance(v, dict)]
        targets = [str(v["name"]) for v in variables if v.get("role") == "Target" and v.get("name")]
        if not targets and isinstance(data.get("target_col"), list):
            targets = [str(t) for t in data["target_col"]]
        ids = [str(v["name"]) for v in variables if v.get("role") == "ID" and v.get("name")]
        meta: dict[str, Any] = {
            "source": "uci", "id": data.get("uci_id"), "name": name,
            "target_columns": targets, "id_columns": ids,
            "num_instances": data.get("num_instances"), "num_features": data.get("num_features"),
            "tasks": data.get("tasks"), "doi": data.get("dataset_doi"),
            "repository_url": data.get("repository_url"), "url": redact_url(str(data_url)),
            "api": redact_url(base),
        }
        return replace(fetched, suggested_target=targets[0] if targets else None,
                       metadata={k: v for k, v in meta.items() if v not in (None, "", [])})


def parse_uci_uri(uri: str) -> str:
    """The id (digits) or name in ``uci://<id>``."""
    parts = urlsplit(uri)
    text = unquote((parts.netloc.rpartition("@")[2] + parts.path).strip("/"))
    if not text:
        raise UnsupportedSourceError(f"{redact_url(uri)!r} names no dataset; use uci://<id> "
                                     "(as in archive.ics.uci.edu/dataset/<id>/<name>)")
    return text
