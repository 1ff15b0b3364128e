"""Run the profile service: python -m mlmesh_profile."""

from mlmesh_profile.service import service

if __name__ == "__main__":
    service.run()
