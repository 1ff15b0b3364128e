"""Wiring: experiment.requested -> fetch, check, store as Parquet -> dataset.acquired."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from pybreaker import CircuitBreakerError

from mlmesh.events.v1.dataset_pb2 import DatasetAcquired
from mlmesh.events.v1.experiment_pb2 import ExperimentRequested, StageProgress
from mlmesh_acquire.archives import ArchiveLimits
from mlmesh_acquire.fetch import AcquiredTable, TransientSourceError, acquire
from mlmesh_acquire.safety import FetchLimits, NetworkPolicy, redact_url
from mlmesh_acquire.sources import source_for
from mlmesh_common import topics
from mlmesh_common.breakers import breaker
from mlmesh_common.errors import is_transient
from mlmesh_common.runtime import HandlerContext, Service, member_ref

STAGE = "acquire"
service = Service("acquire")
_last_failure: dict[str, str] = {}
_last_failure_lock = threading.Lock()


def acquire_guarded(dependency: str, *args: Any, **kwargs: Any) -> AcquiredTable:
    """:func:`acquire` behind the circuit breaker of ``dependency``.

    When the breaker trips or is open, the error still says what went wrong with the host
    (pybreaker alone would only say that the breaker opened).
    """
    try:
        return breaker(f"dataset-host:{dependency}").call(acquire, *args, **kwargs)
    except CircuitBreakerError as exc:
        cause = exc.__context__
        with _last_failure_lock:
            if cause is not None and is_transient(cause):
                _last_failure[dependency] = str(cause)
            last = _last_failure.get(dependency)
        what = f"{last}; " if last else ""
        raise TransientSourceError(
            f"{what}fetches from {dependency} are paused after repeated failures (circuit "
            "breaker open); they resume by themselves once the host answers again") from exc
    except Exception as exc:
        if is_transient(exc):
            with _last_failure_lock:
                _last_failure[dependency] = str(exc)
        raise



@service.handles(topics.EXPERIMENT_REQUESTED, stage=STAGE)
async def on_requested(ctx: HandlerContext, event: ExperimentRequested) -> None:
    spec = event.spec
    source = source_for(spec.dataset_uri)  # an unknown scheme fails here, naming the known ones
    await ctx.progress(STAGE, StageProgress.STATE_STARTED, 0,
                       f"fetching {source.describe(spec.dataset_uri)}")
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

    out = ctx.work_dir / "acquire"
    table = await ctx.run_blocking(
        acquire_guarded, source.dependency(spec.dataset_uri), spec.dataset_uri, out,
        expected_sha256=spec.dataset_sha256 or None, progress=report,
        options=dict(spec.source_options), policy=NetworkPolicy.from_settings(ctx.settings),
        limits=FetchLimits.from_settings(ctx.settings),
        archive_limits=ArchiveLimits.from_settings(ctx.settings),
        chunk_bytes=ctx.settings.acquire_chunk_bytes)
    ctx.check_cancelled()
    folder = await ctx.save_dir(spec.project, STAGE, out)
    ctx.emit(topics.DATASET_ACQUIRED, DatasetAcquired(
        spec=spec,
        table=member_ref(folder, out, table.parquet_path.relative_to(out).as_posix(),
                         "application/vnd.apache.parquet"),
        manifest=member_ref(folder, out, "manifest.json", "application/json"),
        source_uri=redact_url(spec.dataset_uri), source_sha256=table.source_sha256,
        source_bytes=table.source_bytes, source_format=table.format, n_rows=table.n_rows,
        n_columns=table.n_columns, columns=table.columns))
    hint = f"; the source names {table.suggested_target!r} as target" if (
        table.suggested_target) else ""
    await ctx.progress(STAGE, StageProgress.STATE_FINISHED, 100,
                       f"{table.n_rows} rows x {table.n_columns} columns ({table.format}){hint}")
