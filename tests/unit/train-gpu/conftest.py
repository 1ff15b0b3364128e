"""Fixtures: PREPARED folders built from real datasets (see prepared_data.py)."""

import importlib.util
import sys
from pathlib import Path


def _load_prepared_helper():
    name = "mlmesh_test_prepared_data"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).resolve().parents[1] / "modeling" / "prepared_data.py"
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_helper = _load_prepared_helper()
make_prepared = _helper.make_prepared
cancer_prepared = _helper.cancer_prepared
diabetes_prepared = _helper.diabetes_prepared
penguins_prepared = _helper.penguins_prepared
penguins_prepared_trees = _helper.penguins_prepared_trees
