"""Run the train-gpu service: python -m mlmesh_train_gpu."""

from mlmesh_train_gpu.service import service

if __name__ == "__main__":
    service.run()
