"""Fixtures: real PREPARED folders, a selected model and its selection.json, as select writes
them, stored in a local artifact store (see docs_artifacts.py)."""

import importlib.util
import sys
from pathlib import Path


def _load(name: str, path: Path):
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_here = Path(__file__).resolve().parent
_prepared = _load("mlmesh_test_prepared_data", _here.parent / "modeling" / "prepared_data.py")
_artifacts = _load("mlmesh_test_docs_artifacts", _here / "docs_artifacts.py")

penguins_experiment = _artifacts.penguins_experiment
diabetes_experiment = _artifacts.diabetes_experiment
binary_experiment = _artifacts.binary_experiment
