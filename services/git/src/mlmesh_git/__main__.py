"""Run the git service: python -m mlmesh_git."""

from mlmesh_git.service import service

if __name__ == "__main__":
    service.run()
