"""``hf://datasets/<repo>[/<config>/<split>]``: a Hugging Face Hub dataset.

``<repo>`` is ``owner/name`` (or a legacy single ``name``; then three segments mean
``name/config/split``), optionally with ``@revision``. The Hub's Parquet export lists the
files of each config and split (``GET {endpoint}/api/datasets/{repo}/parquet``); the
chosen split's shards are downloaded and, when there are several, joined into one Parquet
file row group by row group. Without a config the ``default`` one (else the first) is
taken, without a split ``train`` (else the first); the choice is recorded. A dataset with
no Parquet export falls back to its own data files (``GET {endpoint}/api/datasets/{repo}``
lists them; ``{endpoint}/datasets/{repo}/resolve/{revision}/{path}`` serves one).

Options: ``hf_config``, ``hf_split``, ``hf_revision`` (default ``main``), ``hf_file`` (a file
path in the repository, fetched as is). The endpoint is ``MLMESH_HF_ENDPOINT``, else
``HF_ENDPOINT``, else ``https://huggingface.co``; the token (``HF_TOKEN``,
``HUGGING_FACE_HUB_TOKEN`` or the file ``HF_TOKEN_PATH`` / ``$HF_HOME/token`` /
``~/.cache/huggingface/token``) goes as a Bearer token to the endpoint host only.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, urlsplit

from mlmesh_acquire.safety import redact_url
from mlmesh_acquire.source_errors import SourceError, SourceNotFoundError, UnsupportedSourceError
from mlmesh_acquire.sources._base import FetchContext, FetchedFile, Source, safe_name
from mlmesh_acquire.sources._http import Credentials, HttpSession
from mlmesh_acquire.sources._registry import register_source

log = logging.getLogger(__name__)

DEFAULT_HF_ENDPOINT = "https://huggingface.co"
#: Data file extensions, best first, for datasets without a Parquet export.
DATA_EXTENSIONS = (".parquet", ".csv", ".tsv", ".jsonl", ".json", ".csv.gz", ".jsonl.gz",
                   ".arrow", ".feather", ".xlsx", ".zip", ".tar.gz", ".txt")


@register_source
class HuggingFaceSource(Source):
    """A split of a Hugging Face Hub dataset, or one file of its repository."""

    schemes = ("hf",)

    def dependency(self, uri: str) -> str:
        return "huggingface"

    def fetch(self, uri: str, ctx: FetchContext) -> FetchedFile:
        repo, revision, config, split = parse_hf_uri(uri)
        config = ctx.option("hf_config") or config
        split = ctx.option("hf_split") or split
        revision = ctx.option("hf_revision") or revision or "main"
        endpoint, policy = ctx.endpoint(("MLMESH_HF_ENDPOINT", "HF_ENDPOINT"),
                                        DEFAULT_HF_ENDPOINT)
        token = hf_token(ctx.env)
        credentials = (Credentials.for_url(endpoint, {"Authorization": f"Bearer {token}"})
                       if token else None)
        meta: dict[str, Any] = {"source": "huggingface", "repo": repo, "revision": revision,
                                "endpoint": redact_url(endpoint)}
        with HttpSession(ctx, policy=policy, credentials=credentials) as session:
            hub = _Hub(session, endpoint, repo, revision, authenticated=token is not None)
            path = ctx.option("hf_file")
            if path:
                fetched = hub.download_file(path, ctx)
                meta["file"] = path
            else:
                listing = hub.parquet_listing(revision)
                if listing is None:
                    path = hub.pick_data_file(split)
                    fetched = hub.download_file(path, ctx)
                    meta["file"] = path
                else:
                    config, split, urls = _choose(listing, repo, config, split)
                    fetched = hub.download_parquet(urls, f"{config}-{split}", ctx)
                    meta.update(config=config, split=split, shards=len(urls),
                                configs=sorted(listing),
                                splits=sorted(listing.get(config, {})))
        return replace(fetched, metadata=meta)


def parse_hf_uri(uri: str) -> tuple[str, str | None, str | None, str | None]:
    """``(repo, revision, config, split)`` of ``hf://datasets/<repo>[@rev][/<config>/<split>]``."""
    parts = urlsplit(uri)
    if parts.netloc != "datasets":
        raise UnsupportedSourceError(
            f"{redact_url(uri)!r}: only Hugging Face datasets can be fetched; use "
            "hf://datasets/<owner>/<name>[/<config>/<split>]")
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) in (1, 3):  # a legacy canonical repo: name[/config/split]
        repo_segments, rest = segments[:1], segments[1:]
    elif len(segments) in (2, 4):
        repo_segments, rest = segments[:2], segments[2:]
    else:
        raise UnsupportedSourceError(
            f"{redact_url(uri)!r} is not hf://datasets/<owner>/<name>[/<config>/<split>]; "
            "give both a config and a split, or neither (or use the hf_config / hf_split "
            "options)")
    repo = "/".join(repo_segments)
    revision = None
    if "@" in repo:
        repo, revision = repo.split("@", 1)
    config, split = (rest[0], rest[1]) if rest else (None, None)
    return repo, revision or None, config, split


def hf_token(env: Mapping[str, str]) -> str | None:
    """The Hub token from the environment or the token file, if any."""
    token = env.get("HF_TOKEN") or env.get("HUGGING_FACE_HUB_TOKEN")
    if token:
        return token.strip()
    candidates = []
    if env.get("HF_TOKEN_PATH"):
        candidates.append(Path(env["HF_TOKEN_PATH"]))
    if env.get("HF_HOME"):
        candidates.append(Path(env["HF_HOME"]) / "token")
    home = Path(env.get("HOME") or Path.home())
    candidates.append(home / ".cache" / "huggingface" / "token")
    for path in candidates:
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError:
            continue
        if text:
            return text
    return None


def _choose(listing: dict[str, dict[str, list[str]]], repo: str, config: str | None,
            split: str | None) -> tuple[str, str, list[str]]:
    if not listing:
        raise SourceNotFoundError(f"the Hub lists no Parquet files for {repo}; give a data "
                                  "file with the hf_file option")
    if config is None:
        config = "default" if "default" in listing else next(iter(listing))
    elif config not in listing:
        raise SourceNotFoundError(
            f"{repo} has no config {config!r}; it has {', '.join(sorted(listing))}")
    splits = listing[config]
    if split is None:
        split = "train" if "train" in splits else next(iter(splits), None)
    if split is None or split not in splits:
        raise SourceNotFoundError(
            f"{repo} (config {config!r}) has no split {split!r}; it has "
            f"{', '.join(sorted(splits)) or 'none'}")
    urls = splits[split]
    if not urls:
        raise SourceNotFoundError(f"{repo} {config}/{split} lists no Parquet files")
    return config, split, urls


class _Hub:
    def __init__(self, session: HttpSession, endpoint: str, repo: str, revision: str, *,
                 authenticated: bool) -> None:
        self.session = session
        self.endpoint = endpoint
        self.repo = repo
        self.revision = revision
        self.authenticated = authenticated
        self.label = f"hf://datasets/{repo}"

    def _refused(self, status: int) -> SourceNotFoundError:
        if status in (401, 403) and not self.authenticated:
            return SourceNotFoundError(
                f"the Hub refused {self.label} (HTTP {status}): the dataset is gated or "
                "private, so set HF_TOKEN to a token of an account that accepted its "
                "conditions", status=status)
        if status in (401, 403):
            return SourceNotFoundError(
                f"the Hub refused {self.label} (HTTP {status}): the token in HF_TOKEN has no "
                "access; accept the dataset's conditions on its page with that account",
                status=status)
        return SourceNotFoundError(
            f"the Hub has no dataset {self.repo} (HTTP {status}): check the name (as in "
            "huggingface.co/datasets/<owner>/<name>)", status=status)

    def parquet_listing(self, revision: str) -> dict[str, dict[str, list[str]]] | None:
        """``{config: {split: [urls]}}``, or None when the dataset has no Parquet export."""
        url = f"{self.endpoint}/api/datasets/{self.repo}/parquet"
        status, body = self.session.get_json(url, accept_statuses=(401, 403, 404))
        if status in (401, 403):
            raise self._refused(status)
        if status == 404 or revision != "main":
            # The export follows the main branch only; other revisions use the files.
            return None
        if not isinstance(body, dict) or not all(isinstance(v, dict) for v in body.values()):
            raise SourceError(f"the Hub's Parquet listing for {self.label} is not "
                              "{config: {split: [urls]}}; check MLMESH_HF_ENDPOINT")
        return {str(c): {str(s): [str(u) for u in urls] for s, urls in splits.items()}
                for c, splits in body.items()}

    def pick_data_file(self, split: str | None) -> str:
        url = f"{self.endpoint}/api/datasets/{self.repo}/revision/{quote(self.revision)}"
        status, body = self.session.get_json(url, accept_statuses=(401, 403, 404))
        if status != 200:
            raise self._refused(status)
        names = [str(s.get("rfilename", "")) for s in (body or {}).get("siblings", [])
                 if isinstance(s, dict)]
        data = [n for n in names if _data_rank(n) is not None]
        if not data:
            raise SourceNotFoundError(
                f"{self.label} has no Parquet export and no data file the acquire stage reads "
                f"(files: {', '.join(names[:10]) or 'none'}); name one with hf_file")
        wanted = split or "train"  # like the Parquet export: train unless told otherwise
        matching = [n for n in data if wanted in PurePosixPath(n).name]
        if split and not matching:
            raise SourceNotFoundError(
                f"{self.label} has no data file for split {split!r} (files: "
                f"{', '.join(data[:10])}); name one with hf_file")
        data = matching or data
        return min(data, key=lambda n: (_data_rank(n), n.count("/"), n))

    def download_file(self, path: str, ctx: FetchContext) -> FetchedFile:
        url = (f"{self.endpoint}/datasets/{self.repo}/resolve/{quote(self.revision, safe='')}/"
               f"{quote(path.lstrip('/'))}")
        try:
            return self.session.download(url, ctx.dest_dir, filename=PurePosixPath(path).name,
                                         label=f"{self.label}/{path}")
        except SourceNotFoundError as exc:
            if exc.status == 404:
                raise SourceNotFoundError(f"{self.label} has no file {path!r} at revision "
                                          f"{self.revision!r}", status=404) from None
            if exc.status in (401, 403):
                raise self._refused(exc.status) from None
            raise

    def download_parquet(self, urls: list[str], name: str, ctx: FetchContext) -> FetchedFile:
        shards_dir = ctx.dest_dir / f".{safe_name(name)}-shards"
        try:
            shards: list[FetchedFile] = []
            done = 0
            for i, url in enumerate(urls):
                try:
                    shard = self.session.download(
                        url, shards_dir, filename=f"{i:05d}.parquet", offset_bytes=done,
                        label=f"{self.label} shard {i + 1} of {len(urls)}")
                except SourceNotFoundError as exc:
                    if exc.status in (401, 403):
                        raise self._refused(exc.status) from None
                    raise
                shards.append(shard)
                done += shard.size_bytes
            target = ctx.dest_dir / f"{safe_name(name)}.parquet"
            if len(shards) == 1:
                shards[0].path.replace(target)
                merged = replace(shards[0], path=target)
            else:
                merged = _merge_parquet([s.path for s in shards], target)
        finally:
            shutil.rmtree(shards_dir, ignore_errors=True)
        return replace(merged, declared_media_type="application/vnd.apache.parquet")


def _data_rank(name: str) -> int | None:
    lower = name.lower()
    if PurePosixPath(lower).name.startswith(".") or lower.endswith("readme.md"):
        return None
    for rank, ext in enumerate(DATA_EXTENSIONS):
        if lower.endswith(ext):
            return rank
    return None


def _merge_parquet(paths: list[Path], target: Path) -> FetchedFile:
    """Join Parquet shards into one file, one row group at a time."""
    import pyarrow.parquet as pq

    schema = pq.read_schema(paths[0])
    tmp = target.with_name(target.name + ".part")
    try:
        with pq.ParquetWriter(tmp, schema) as writer:
            for path in paths:
                reader = pq.ParquetFile(path)
                if not reader.schema_arrow.equals(schema, check_metadata=False):
                    raise SourceError(
                        f"the Parquet shards of {target.stem} have different columns; fetch "
                        "one shard with hf_file")
                for i in range(reader.num_row_groups):
                    writer.write_table(reader.read_row_group(i))
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    digest = hashlib.sha256()
    size = 0
    with open(target, "rb") as fh:
        for chunk in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(chunk)
            size += len(chunk)
    return FetchedFile(path=target, sha256=digest.hexdigest(), size_bytes=size,
                       format="parquet", media_type="application/vnd.apache.parquet")
