"""mlmesh's shared runtime: envelope, topic registry, ledger, artifact store, service runtime."""

__version__ = "0.1.0"
