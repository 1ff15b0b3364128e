"""Wiring: experiment.requested -> fetch, check, store as Parquet -> dataset.acquired."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlparse

from mlmesh.events.v1.dataset_pb2 import DatasetAcquired
from mlmesh.events.v1.experiment_pb2 import ExperimentRequested, StageProgress
from mlmesh_acquire.fetch import acquire
from mlmesh_common import topics
from mlmesh_common.breakers import breaker
from mlmesh_common.runtime import HandlerContext, Service, member_ref

STAGE = "acquire"
service = Service("acquire")


def redact(uri: str) -> str:
    """The URI without credentials or query string, safe for logs and progress."""
    parsed = urlparse(uri)
    netloc = parsed.hostname or ""
    if parsed.port:
        netloc += f":{parsed.port}"
    return parsed._replace(netloc=netloc, query="", fragment="").geturl()


@service.handles(topics.EXPERIMENT_REQUESTED, stage=STAGE)
async def on_requested(ctx: HandlerContext, event: ExperimentRequested) -> None:
    spec = event.spec
    await ctx.progress(STAGE, StageProgress.STATE_STARTED, 0,
                       f"fetching {redact(spec.dataset_uri)}")
    loop = asyncio.get_running_loop()
    started, last = time.monotonic(), [0.0]

    def report(done: int, total: int | None) -> None:  # called from the download thread
        now = time.monotonic()
        if now - last[0] < 1.0:
            return
        last[0] = now
        rate = done / max(now - started, 1e-6)
        eta = (total - done) / rate if total and rate else 0.0
        asyncio.run_coroutine_threadsafe(ctx.progress(
            STAGE, StageProgress.STATE_RUNNING, 90.0 * done / total if total else 0.0,
            f"{done / 1e6:.1f} MB downloaded", bytes_done=done, bytes_total=total or 0,
            eta_s=eta), loop)

    host = urlparse(spec.dataset_uri).hostname or "local-files"
    out = ctx.work_dir / "acquire"
    table = await ctx.run_blocking(breaker(f"dataset-host:{host}").call, acquire,
                                   spec.dataset_uri, out,
                                   expected_sha256=spec.dataset_sha256 or None, progress=report)
    ctx.check_cancelled()
    folder = await ctx.save_dir(spec.project, STAGE, out)
    ctx.emit(topics.DATASET_ACQUIRED, DatasetAcquired(
        spec=spec,
        table=member_ref(folder, out, table.parquet_path.relative_to(out).as_posix(),
                         "application/vnd.apache.parquet"),
        manifest=member_ref(folder, out, "manifest.json", "application/json"),
        source_uri=redact(spec.dataset_uri), source_sha256=table.source_sha256,
        source_bytes=table.source_bytes, source_format=table.format, n_rows=table.n_rows,
        n_columns=table.n_columns, columns=table.columns))
    await ctx.progress(STAGE, StageProgress.STATE_FINISHED, 100,
                       f"{table.n_rows} rows x {table.n_columns} columns ({table.format})")
