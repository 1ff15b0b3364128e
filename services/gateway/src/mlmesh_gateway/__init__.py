"""The mlmesh gateway: REST and gRPC API over the ledger's projection of every event."""
