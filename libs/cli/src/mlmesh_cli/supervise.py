"""Entry point of the detached supervisor process (started by `mlmesh up`)."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from mlmesh_cli.runner import MeshConfig, Supervisor, parse_replicas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--gateway-port", type=int, default=8080)
    parser.add_argument("--grpc-port", type=int, default=50051)
    parser.add_argument("--replicas", default="")
    parser.add_argument("--autoscale", action="store_true",
                        help="scale services by consumer lag (KEDA's formula)")
    parser.add_argument("--max-replicas", type=int, default=4)
    parser.add_argument("--scale-cooldown", type=float, default=30.0)
    parser.add_argument("--kafka-bootstrap", default=os.environ.get("MLMESH_KAFKA_BOOTSTRAP",
                                                                    ""))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    supervisor = Supervisor(MeshConfig(home=args.home, gateway_port=args.gateway_port,
                                       grpc_port=args.grpc_port,
                                       kafka_bootstrap=args.kafka_bootstrap,
                                       replicas=parse_replicas(args.replicas),
                                       autoscale=args.autoscale,
                                       max_replicas=args.max_replicas,
                                       scale_cooldown_s=args.scale_cooldown))
    try:
        supervisor.start()
        supervisor.supervise()
    finally:
        supervisor.stop()


if __name__ == "__main__":
    main()
