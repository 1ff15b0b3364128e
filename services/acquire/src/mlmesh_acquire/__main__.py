"""Run the acquire service: python -m mlmesh_acquire."""

from mlmesh_acquire.service import service

if __name__ == "__main__":
    service.run()
