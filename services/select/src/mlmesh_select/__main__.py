"""Run the select service: python -m mlmesh_select."""

from mlmesh_select.service import service

if __name__ == "__main__":
    service.run()
