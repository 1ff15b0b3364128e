"""``openml://<id>``: an OpenML dataset, as Parquet when OpenML has it, else ARFF.

``GET {base}/api/v1/json/data/{id}`` answers ``{"data_set_description": {...}}`` with the
dataset's ``format`` (ARFF), ``url`` (the ARFF file), ``parquet_url``, ``md5_checksum``
(of the ARFF file, checked), ``default_target_attribute`` (recorded as the suggested
target), ``row_id_attribute`` and ``ignore_attribute`` (recorded for profile). An unknown id
answers HTTP 412 with ``{"error": {"code": "111", "message": "Unknown dataset"}}``.
The base is ``https://www.openml.org`` unless ``MLMESH_OPENML_URL`` says otherwise;
``OPENML_API_KEY``, when set, is passed for private datasets (and redacted everywhere).

Options: ``openml_format`` = ``parquet`` (default) or ``arff``.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode, urlsplit

from mlmesh_acquire.safety import SecretScrubber, redact_url
from mlmesh_acquire.source_errors import (
    ChecksumMismatchError,
    SourceError,
    SourceNotFoundError,
    UnsupportedSourceError,
)
from mlmesh_acquire.sources._base import FetchContext, FetchedFile, Source
from mlmesh_acquire.sources._http import HttpSession
from mlmesh_acquire.sources._registry import register_source

log = logging.getLogger(__name__)

DEFAULT_OPENML_URL = "https://www.openml.org"


@register_source
class OpenMLSource(Source):
    """An OpenML dataset by id."""

    schemes = ("openml",)

    def dependency(self, uri: str) -> str:
        return "openml"

    def fetch(self, uri: str, ctx: FetchContext) -> FetchedFile:
        dataset_id = parse_openml_uri(uri)
        wanted = (ctx.option("openml_format") or "parquet").lower()
        if wanted not in ("parquet", "arff"):
            raise UnsupportedSourceError(
                f"source option openml_format={wanted!r} is not parquet or arff")
        base, policy = ctx.endpoint(("MLMESH_OPENML_URL",), DEFAULT_OPENML_URL)
        api_key = ctx.env.get("OPENML_API_KEY") or ""
        scrub = SecretScrubber((api_key,))
        url = f"{base}/api/v1/json/data/{dataset_id}"
        if api_key:
            url += "?" + urlencode({"api_key": api_key})
        label = f"openml://{dataset_id}"
        with HttpSession(ctx, policy=policy) as session:
            status, body = session.get_json(url, accept_statuses=(404, 412))
            if status in (404, 412):
                message = scrub(_error_message(body) or f"HTTP {status}")
                raise SourceNotFoundError(
                    f"OpenML has no dataset {dataset_id} ({message}); check the id on "
                    "openml.org/search?type=data", status=status)
            desc = (body or {}).get("data_set_description") if isinstance(body, dict) else None
            if not isinstance(desc, dict):
                raise SourceError(f"OpenML's answer for {label} has no data_set_description; "
                                  "check MLMESH_OPENML_URL")
            fetched, used = self._download(session, desc, wanted, ctx, label)
        target_attr = str(desc.get("default_target_attribute") or "").strip()
        targets = [t.strip() for t in target_attr.split(",") if t.strip()]
        ignore = desc.get("ignore_attribute") or []
        meta: dict[str, Any] = {
            "source": "openml", "id": dataset_id, "name": desc.get("name"),
            "version": desc.get("version"), "format": used,
            "original_format": desc.get("format"), "licence": desc.get("licence"),
            "status": desc.get("status"), "default_target_attribute": target_attr or None,
            "target_columns": targets, "row_id_attribute": desc.get("row_id_attribute"),
            "ignore_attribute": ignore if isinstance(ignore, list) else [ignore],
            "url": redact_url(str(desc.get("parquet_url" if used == "parquet" else "url"))),
            "api": redact_url(base),
        }
        if desc.get("status") not in (None, "active"):
            log.warning("OpenML dataset %s is %s, not active", dataset_id, desc.get("status"))
        return replace(fetched, suggested_target=targets[0] if targets else None,
                       metadata={k: v for k, v in meta.items() if v not in (None, "", [])})

    def _download(self, session: HttpSession, desc: dict[str, Any], wanted: str,
                  ctx: FetchContext, label: str) -> tuple[FetchedFile, str]:
        parquet_url = str(desc.get("parquet_url") or "")
        arff_url = str(desc.get("url") or "")
        fmt = str(desc.get("format") or "ARFF").lower()
        name = str(desc.get("name") or f"openml-{desc.get('id')}")
        if wanted == "parquet" and parquet_url:
            try:
                return session.download(parquet_url, ctx.dest_dir, filename=f"{name}.parquet",
                                        label=f"{label} (Parquet)"), "parquet"
            except SourceNotFoundError as exc:
                if not arff_url:
                    raise
                log.info("%s: no Parquet file (%s); fetching the ARFF file", label, exc)
        if not arff_url:
            raise SourceNotFoundError(f"OpenML lists no file for {label}; the dataset may be "
                                      "deactivated")
        if "sparse" in fmt:
            log.info("%s is sparse ARFF", label)
        fetched = session.download(arff_url, ctx.dest_dir, filename=f"{name}.arff",
                                   label=f"{label} (ARFF)")
        expected_md5 = str(desc.get("md5_checksum") or "").lower()
        if expected_md5:
            actual = _md5(fetched)
            if actual != expected_md5:
                fetched.path.unlink(missing_ok=True)
                raise ChecksumMismatchError(
                    f"the ARFF file of {label} has md5 {actual} but OpenML lists "
                    f"{expected_md5}; the file on the server is corrupt or changed, so try "
                    "again later or report it on openml.org", expected=expected_md5,
                    actual=actual)
        return fetched, "arff"


def parse_openml_uri(uri: str) -> int:
    """The dataset id of ``openml://<id>``."""
    parts = urlsplit(uri)
    text = (parts.netloc.rpartition("@")[2] + parts.path).strip("/")
    if not text.isdigit():
        raise UnsupportedSourceError(
            f"{redact_url(uri)!r} is not openml://<id>; give the numeric dataset id (as in "
            "openml.org/d/<id>)")
    return int(text)


def _error_message(body: Any) -> str | None:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        message = str(error.get("message") or "")[:200]
        code = error.get("code")
        return f"{message} (code {code})" if code else message or None
    return None


def _md5(fetched: FetchedFile) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(fetched.path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()
