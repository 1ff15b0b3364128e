"""The autogluon family: TabularPredictor as one candidate (slow tests, marked ``autogluon``).

Tiny data and a light model portfolio (LightGBM only, few rounds) on top of the
medium_quality preset keep each fit to a few seconds.
"""

import gc
import io
from pathlib import Path

import joblib
import numpy as np
import pytest

from mlmesh_common.modeling import cross_validate, load_prepared, new_model, score

pytestmark = [pytest.mark.autogluon, pytest.mark.filterwarnings("ignore")]
LIGHT = {"hyperparameters": {"GBM": {"num_boost_round": 30}}, "time_limit": 20}


@pytest.fixture(scope="module")
def penguins_two_folds(tmp_path_factory):
    from mlmesh_test_prepared_data import make_prepared, penguins_frame

    return make_prepared(
        tmp_path_factory.mktemp("penguins_ag"),
        penguins_frame(),
        "species",
        "multiclass",
        n_folds=2,
    )


def test_cv_uses_our_folds_and_the_budget(penguins_two_folds):
    data = load_prepared(penguins_two_folds)
    seen = []
    cv = cross_validate(
        data,
        "autogluon",
        LIGHT,
        device="cpu",
        seed=0,
        time_budget_s=40,
        on_fold=lambda i, s: seen.append(i),
        measure=True,
    )
    assert seen == [0, 1] and cv.n_folds == 2 and not cv.truncated
    # every train row was scored by the predictor fitted on the other fold
    assert not np.isnan(cv.oof).any() and cv.classes == ["Adelie", "Chinstrap", "Gentoo"]
    np.testing.assert_allclose(cv.oof.sum(axis=1), 1.0, rtol=1e-6)
    oof_pred = np.array(cv.classes)[cv.oof.argmax(axis=1)]
    assert score("accuracy", data.y_train, y_pred=oof_pred) > 0.9 and cv.mean > 0.9
    assert cv.fit_seconds < 40 + 10
    assert cv.latency_ms > 0 and cv.size_bytes > 10_000  # the packed predictor is inside


def test_model_pickles_with_its_predictor(penguins_two_folds):
    data = load_prepared(penguins_two_folds)
    model = new_model(data, "autogluon", LIGHT, device="cpu", seed=0)
    model.fit(data.X_train, data.y_train)
    assert model.preprocessor_ is None and model.uses_raw_features
    assert model.estimator_.eval_metric == "accuracy"  # the experiment's metric
    folder = Path(model.estimator_.path_)
    assert folder.is_dir()
    proba = model.predict_proba(data.X_test)
    buf = io.BytesIO()
    joblib.dump(model, buf)
    buf.seek(0)
    restored = joblib.load(buf)
    assert Path(restored.estimator_.path_) != folder
    np.testing.assert_allclose(restored.predict_proba(data.X_test), proba)
    assert set(restored.predict(data.X_test)) <= {"Adelie", "Chinstrap", "Gentoo"}
    assert (restored.predict(data.X_test) == data.y_test.to_numpy()).mean() > 0.9
    del model
    gc.collect()
    assert not folder.exists()  # the temporary predictor folder goes with the model
