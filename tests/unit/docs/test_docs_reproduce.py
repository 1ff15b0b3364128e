"""reproduce.py, run as a standalone script in a subprocess against stored artifacts."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlmesh_docs.generate import REPRODUCE_PY, StoredArtifacts, _write_reproduction
from mlmesh_select.selection import load_model

SEED = 7


@pytest.fixture
def script_dir(diabetes_experiment, tmp_path) -> Path:
    exp = diabetes_experiment
    stored = StoredArtifacts(str(exp.store_root), exp.prepared_uri, exp.selection_uri,
                             exp.prepared_sha256, exp.selection_sha256)
    _write_reproduction(tmp_path, exp.selection, stored, SEED,
                        load_model(exp.select_dir / "model.joblib"))
    return tmp_path


def _run(script_dir: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(script_dir / REPRODUCE_PY), *args],
                          capture_output=True, text=True, timeout=120, cwd=cwd or script_dir)


def test_reproduces_the_recorded_score_from_the_store(script_dir, diabetes_experiment,
                                                      tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("cwd")  # the script finds its config by its own path
    result = _run(script_dir, cwd=elsewhere)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "REPRODUCED" in result.stdout
    report = json.loads(result.stdout[: result.stdout.rindex("}") + 1])
    assert report["recorded_test_score"] == diabetes_experiment.selection["test_score"]
    assert report["difference"] <= report["tolerance"] == 1e-6


def test_multiclass_string_labels_reproduce(penguins_experiment, tmp_path):
    exp = penguins_experiment
    stored = StoredArtifacts(str(exp.store_root), exp.prepared_uri, exp.selection_uri,
                             exp.prepared_sha256, exp.selection_sha256)
    _write_reproduction(tmp_path, exp.selection, stored, SEED,
                        load_model(exp.select_dir / "model.joblib"))
    result = _run(tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout


def test_a_different_recorded_score_exits_1(script_dir, diabetes_experiment, tmp_path):
    selection = dict(diabetes_experiment.selection)
    selection["test_score"] += 0.5
    tampered = tmp_path / "selection.json"
    tampered.write_text(json.dumps(selection, default=str))
    result = _run(script_dir, "--prepared", str(diabetes_experiment.prepared_dir),
                  "--selection", str(tampered))
    assert result.returncode == 1
    assert "MISMATCH" in result.stdout


def test_a_modified_store_is_refused(script_dir, diabetes_experiment, tmp_path):
    config = json.loads((script_dir / "reproduction.json").read_text())
    store_copy = tmp_path / "store"
    shutil.copytree(diabetes_experiment.store_root, store_copy)
    test_file = next(store_copy.rglob("test.parquet"))
    test_file.write_bytes(test_file.read_bytes() + b"\0")
    config["artifact_root"] = str(store_copy)
    for key in ("prepared", "selection"):
        config[key]["uri"] = config[key]["uri"].replace(
            diabetes_experiment.store_root.as_uri(), store_copy.as_uri())
    (script_dir / "reproduction.json").write_text(json.dumps(config))
    result = _run(script_dir)
    assert result.returncode == 1
    assert "sha256" in result.stderr


@pytest.mark.parametrize("kind", ["caruana", "stacking"])
def test_an_ensemble_winner_reproduces(penguins_experiment, tmp_path, kind):
    """An ensemble winner is rebuilt from its members (and the stored meta-learner)."""
    from sklearn.linear_model import LogisticRegression

    from mlmesh_common.modeling import EnsembleModel, load_prepared, new_model, score_model
    from mlmesh_docs.reproduce_script import reproduce

    data = load_prepared(penguins_experiment.prepared_dir)
    members = [{"family": "linear", "params": {}, "weight": 0.75},
               {"family": "knn", "params": {"n_neighbors": 7}, "weight": 0.25}]
    models = [new_model(data, m["family"], m["params"], device="cpu", seed=SEED)
              for m in members]
    X_fit, y_fit = data.combined(("train", "valid"))
    if kind == "caruana":
        model = EnsembleModel(models, [m["weight"] for m in members], kind="caruana")
    else:
        classes = sorted(set(y_fit))
        rng = np.random.default_rng(0)
        oof = rng.dirichlet(np.ones(len(classes)), size=(60, len(members)))
        meta = LogisticRegression().fit(oof.reshape(60, -1), rng.choice(classes, 60))
        model = EnsembleModel(models, None, kind="stacking", meta=meta, meta_classes=classes)
    model.fit(X_fit, y_fit)
    select_dir = tmp_path / "select"
    select_dir.mkdir()
    import joblib

    joblib.dump(model, select_dir / "model.joblib")
    score = float(score_model(model, data.X_test, data.y_test, data.metric))
    selection = {"family": "ensemble", "params": {"kind": kind}, "metric": data.metric,
                 "test_score": score, "ensemble": {"kind": kind, "members": members}}
    (select_dir / "selection.json").write_text(json.dumps(selection))
    result = reproduce(penguins_experiment.prepared_dir, select_dir / "selection.json", SEED,
                       1e-9)
    assert result["matches"], result
