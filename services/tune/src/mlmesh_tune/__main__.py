"""Run the tune service: python -m mlmesh_tune."""

from mlmesh_tune.service import service

if __name__ == "__main__":
    service.run()
