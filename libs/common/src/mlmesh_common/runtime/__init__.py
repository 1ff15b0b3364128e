"""The service runtime: one handler per input topic on one shared consumer/producer core.

    service = Service("profile")

    @service.handles(topics.DATASET_ACQUIRED, stage="profile")
    async def on_acquired(ctx: HandlerContext, event: DatasetAcquired) -> None:
        ...
        ctx.emit(topics.DATASET_PROFILED, DatasetProfiled(...))

    if __name__ == "__main__":
        service.run()
"""

from mlmesh_common.runtime._context import HandlerContext, Output, member_ref
from mlmesh_common.runtime._service import Service

__all__ = ["HandlerContext", "Output", "Service", "member_ref"]
