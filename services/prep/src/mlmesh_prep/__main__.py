"""Run the prep service: python -m mlmesh_prep."""

from mlmesh_prep.service import service

if __name__ == "__main__":
    service.run()
