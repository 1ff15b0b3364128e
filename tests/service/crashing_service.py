"""A profile service that dies (exit 17) after producing its output, before committing,
the first time it runs (CRASH_MARKER file absent). Used by test_runtime."""

from __future__ import annotations

import os
from pathlib import Path

from mlmesh.events.v1.dataset_pb2 import DatasetAcquired, DatasetProfiled
from mlmesh_common import topics
from mlmesh_common.runtime import HandlerContext, Service

service = Service("profile")
marker = Path(os.environ["CRASH_MARKER"])


@service.handles(topics.DATASET_ACQUIRED)
async def on_acquired(ctx: HandlerContext, event: DatasetAcquired) -> None:
    ctx.emit(topics.DATASET_PROFILED, DatasetProfiled(target=event.columns[0]))


async def crash_once(record: object) -> None:
    if not marker.exists():
        marker.write_text("crashed")
        os._exit(17)


service.after_produce = crash_once

if __name__ == "__main__":
    service.run()
