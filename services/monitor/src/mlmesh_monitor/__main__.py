"""Run the monitor: python -m mlmesh_monitor (a faust-streaming worker)."""

from __future__ import annotations

import faust

from mlmesh_common import __version__, observability
from mlmesh_monitor.service import app


def main() -> None:
    observability.setup("monitor", __version__)
    worker = faust.Worker(app, loglevel="INFO", quiet=True, redirect_stdouts=False,
                          override_logging=False)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
