"""The `mlmesh` command: run the embedded mesh and experiments from a terminal."""
