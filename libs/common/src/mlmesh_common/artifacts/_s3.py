from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import boto3
from botocore.exceptions import ClientError

from mlmesh_common.artifacts._base import ArtifactStore
from mlmesh_common.breakers import breaker


class S3ArtifactStore(ArtifactStore):
    """Artifacts in S3 or MinIO (s3://bucket/prefix), every call behind a circuit breaker."""

    def __init__(self, root_uri: str, endpoint_url: str | None = None) -> None:
        parsed = urlparse(root_uri)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError(f"{root_uri!r} is not s3://bucket[/prefix]")
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.root_uri = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        self._client = boto3.client("s3", endpoint_url=endpoint_url)
        self._breaker = breaker(f"s3:{endpoint_url or 'aws'}")

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri_for(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def _split(self, uri: str) -> tuple[str, str]:
        parsed = urlparse(uri)
        if parsed.scheme != "s3":
            raise ValueError(f"{uri!r} is not an s3:// URI")
        return parsed.netloc, parsed.path.lstrip("/")

    def _upload(self, local: Path, key: str, media_type: str) -> None:
        extra = {"ContentType": media_type} if media_type else None
        self._breaker.call(self._client.upload_file, str(local), self.bucket, self._key(key),
                           ExtraArgs=extra)

    def _download(self, uri: str, local: Path) -> None:
        bucket, key = self._split(uri)
        try:
            self._breaker.call(self._client.download_file, bucket, key, str(local))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                raise FileNotFoundError(f"no artifact at {uri}") from exc
            raise

    def exists(self, uri: str) -> bool:
        bucket, key = self._split(uri)
        try:
            self._breaker.call(self._client.head_object, Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                return False
            raise
        return True
