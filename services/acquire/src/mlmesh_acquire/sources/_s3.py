"""``s3://bucket/key`` (one object) and ``s3://bucket/prefix/`` (a folder of objects).

boto3 with the usual AWS credential chain (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``
/ ``AWS_SESSION_TOKEN`` / ``AWS_PROFILE``, instance roles). A custom endpoint (MinIO, say)
comes from ``MLMESH_S3_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``; it is
configured by the operator, not by the experiment, so the SSRF guard does not apply to it.
A broken transfer resumes with a ``Range`` request pinned to the object's ETag.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from mlmesh_acquire.safety import FetchLimits
from mlmesh_acquire.source_errors import (
    MissingCredentialsError,
    SourceNotFoundError,
    TransientSourceError,
    UnsupportedSourceError,
)
from mlmesh_acquire.sources._base import (
    CHUNK_BYTES,
    FOLDER_FORMAT,
    FetchContext,
    FetchedFile,
    PartialFile,
    Source,
    folder_digest,
    safe_name,
    safe_segment,
    with_retries,
)
from mlmesh_acquire.sources._registry import register_source

#: The most objects a ``s3://bucket/prefix/`` fetch takes.
MAX_PREFIX_OBJECTS = 10_000
_NOT_FOUND = {"404", "NoSuchKey", "NoSuchBucket", "NotFound"}
_DENIED = {"403", "AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId",
           "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"}
_TRANSIENT_CODES = {"SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable",
                    "503", "500", "RequestTimeTooSkewed", "Throttling"}


@register_source
class S3Source(Source):
    """An object, or every object under a prefix ending in ``/``, in an S3 bucket."""

    schemes = ("s3",)

    def dependency(self, uri: str) -> str:
        return "s3"

    def fetch(self, uri: str, ctx: FetchContext) -> FetchedFile:
        bucket, key = parse_s3_uri(uri)
        client = _client(ctx)
        label = f"s3://{bucket}/{key}"
        if not key or key.endswith("/"):
            return self._fetch_prefix(client, bucket, key, ctx)
        fetched = _download_object(client, bucket, key, ctx.dest_dir / safe_name(key), ctx,
                                   label)
        return replace(fetched, metadata={"source": "s3", "bucket": bucket, "key": key,
                                          "endpoint": _endpoint(ctx) or "aws"})

    def _fetch_prefix(self, client: Any, bucket: str, prefix: str,
                      ctx: FetchContext) -> FetchedFile:
        label = f"s3://{bucket}/{prefix}"
        objects: list[tuple[str, int]] = []

        def listing() -> None:
            objects.clear()
            paginator = client.get_paginator("list_objects_v2")
            with _s3_errors(label):
                for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                    for item in page.get("Contents", []):
                        name = item["Key"][len(prefix):]
                        if name and not name.endswith("/") and not any(
                                part.startswith(".") for part in name.split("/")):
                            objects.append((item["Key"], int(item["Size"])))
                        if len(objects) > MAX_PREFIX_OBJECTS:
                            raise UnsupportedSourceError(
                                f"{label} holds more than {MAX_PREFIX_OBJECTS} objects; name "
                                "a smaller prefix or one object")

        with_retries(ctx.limits, listing)
        if not objects:
            raise SourceNotFoundError(f"no objects under {label}; check the bucket and prefix")
        total = sum(size for _, size in objects)
        ctx.limits.check_size(total, label)
        target = ctx.dest_dir / safe_name(prefix.rstrip("/") or bucket, default="folder")
        entries: list[tuple[str, str]] = []
        done = 0
        for key, _ in sorted(objects):
            rel = key[len(prefix):]
            parts = [safe_segment(p) for p in rel.split("/")]
            fetched = _download_object(client, bucket, key, target.joinpath(*parts),
                                       ctx.after(done), f"s3://{bucket}/{key}")
            entries.append(("/".join(parts), fetched.sha256))
            done += fetched.size_bytes
        return FetchedFile(path=target, sha256=folder_digest(entries), size_bytes=done,
                           format=FOLDER_FORMAT, media_type="inode/directory",
                           metadata={"source": "s3", "bucket": bucket, "prefix": prefix,
                                     "n_files": len(entries),
                                     "endpoint": _endpoint(ctx) or "aws"})


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``(bucket, key)`` of an ``s3://bucket/key`` URI."""
    parts = urlsplit(uri)
    bucket = parts.netloc.rpartition("@")[2]
    if not bucket:
        raise UnsupportedSourceError(f"{uri!r} names no bucket; use s3://bucket/key")
    return bucket, unquote(parts.path.lstrip("/"))


def _endpoint(ctx: FetchContext) -> str | None:
    return (ctx.env.get("MLMESH_S3_ENDPOINT_URL") or ctx.env.get("AWS_ENDPOINT_URL_S3")
            or ctx.env.get("AWS_ENDPOINT_URL") or None)


def _client(ctx: FetchContext) -> Any:
    import boto3
    from botocore.config import Config

    env = ctx.env
    session = boto3.session.Session(
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID") or None,
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
        aws_session_token=env.get("AWS_SESSION_TOKEN") or None,
        region_name=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        profile_name=env.get("AWS_PROFILE") or None,
    )
    endpoint = _endpoint(ctx)
    config = Config(connect_timeout=ctx.limits.connect_timeout_s,
                    read_timeout=ctx.limits.stall_timeout_s,
                    retries={"max_attempts": 1, "mode": "standard"},  # we retry ourselves
                    s3={"addressing_style": "path" if endpoint else "auto"})
    return session.client("s3", endpoint_url=endpoint, config=config)


def _download_object(client: Any, bucket: str, key: str, target: Path, ctx: FetchContext,
                     label: str) -> FetchedFile:
    limits: FetchLimits = ctx.limits
    state: dict[str, Any] = {"etag": None, "partial": None, "content_type": None}

    def attempt() -> None:
        partial: PartialFile | None = state["partial"]
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if partial is not None and partial.done and state["etag"]:
            kwargs["Range"] = f"bytes={partial.done}-"
            kwargs["IfMatch"] = state["etag"]
        elif partial is not None:
            partial.restart()
        with _s3_errors(label, partial):
            try:
                response = client.get_object(**kwargs)
            except Exception as exc:
                if _code(exc) in ("PreconditionFailed", "412") and partial is not None:
                    partial.restart()  # the object changed since the first bytes
                    state["etag"] = None
                    raise TransientSourceError(f"{label} changed during the download; "
                                               "starting over", kind="broken") from None
                raise
            length = int(response.get("ContentLength") or 0)
            resumed = "Range" in kwargs
            total = (partial.done + length) if (resumed and partial is not None) else length
            limits.check_size(total, label)
            if partial is None:
                partial = PartialFile(target, limits=limits, label=label,
                                      progress=ctx.progress)
                state["partial"] = partial
            partial.total = total
            state["etag"] = response.get("ETag")
            state["content_type"] = response.get("ContentType")
            body = response["Body"]
            try:
                for chunk in body.iter_chunks(CHUNK_BYTES):
                    partial.write(chunk)
            finally:
                body.close()
            if partial.done < total:
                raise TransientSourceError(f"{label} ended after {partial.done} of {total} "
                                           "bytes (truncated download)", kind="truncated")

    try:
        with_retries(limits, attempt)
    except BaseException:
        if state["partial"] is not None:
            state["partial"].discard()
        raise
    partial = state["partial"]
    assert partial is not None
    return partial.finish(declared_media_type=state["content_type"])


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    error = response.get("Error", {}) if isinstance(response, dict) else {}
    code = str(error.get("Code", ""))
    if not code:
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = str(status or "")
    return code


class _s3_errors:  # noqa: N801 - used as a context manager, reads like one
    """Translate botocore errors into source errors with messages a person can act on."""

    def __init__(self, label: str, partial: PartialFile | None = None) -> None:
        self.label = label
        self.partial = partial

    def __enter__(self) -> None:
        return None

    def __exit__(self, _type: object, exc: BaseException | None, _tb: object) -> bool:
        if exc is None:
            return False
        from botocore import exceptions as bexc

        label = self.label
        if isinstance(exc, bexc.NoCredentialsError | bexc.PartialCredentialsError):
            raise MissingCredentialsError(
                f"{label} needs AWS credentials: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, or give the service a role)") from None
        if isinstance(exc, bexc.ClientError):
            code = _code(exc)
            if code in _NOT_FOUND:
                raise SourceNotFoundError(f"{label} does not exist ({code}); check the bucket "
                                          "and key", status=404) from None
            if code in _DENIED:
                raise SourceNotFoundError(f"{label}: access refused ({code}); check the AWS "
                                          "credentials and the bucket policy",
                                          status=403) from None
            if code in _TRANSIENT_CODES:
                raise TransientSourceError(f"{label}: S3 answered {code}; try again later",
                                           kind="status") from None
            raise SourceNotFoundError(f"{label}: S3 refused the request ({code})") from None
        if isinstance(exc, bexc.ReadTimeoutError):
            raise TransientSourceError(f"{label} stalled: no bytes for the stall timeout "
                                       "(MLMESH_ACQUIRE_STALL_TIMEOUT_S)", kind="stall") from None
        if isinstance(exc, bexc.EndpointConnectionError | bexc.ConnectTimeoutError):
            raise TransientSourceError(f"cannot reach the S3 endpoint for {label}; check "
                                       "MLMESH_S3_ENDPOINT_URL and that it is up",
                                       kind="connect") from None
        if isinstance(exc, bexc.BotoCoreError | ConnectionError):
            done = f" after {self.partial.done} bytes" if self.partial is not None else ""
            raise TransientSourceError(f"{label}: the transfer broke{done} "
                                       f"({type(exc).__name__})", kind="truncated") from None
        return False
