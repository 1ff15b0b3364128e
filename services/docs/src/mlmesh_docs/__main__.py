"""Run the docs service: python -m mlmesh_docs."""

from mlmesh_docs.service import service

if __name__ == "__main__":
    service.run()
