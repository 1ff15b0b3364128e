"""Run the publish service: python -m mlmesh_publish."""

from mlmesh_publish.service import service

if __name__ == "__main__":
    service.run()
