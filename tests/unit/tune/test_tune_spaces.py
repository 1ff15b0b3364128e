"""suggest_params: search spaces per family, valid for the estimators."""

import optuna
import pytest

from mlmesh_common.modeling import build_estimator
from mlmesh_tune import TUNABLE_FAMILIES, UntunableFamilyError, suggest_params

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize("family", TUNABLE_FAMILIES)
@pytest.mark.parametrize("problem_type", ["binary", "multiclass", "regression"])
def test_params_build_estimators_on_cpu_and_gpu(family, problem_type):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(5):
        trial = study.ask()
        params = suggest_params(trial, family, problem_type)
        assert all(name.startswith(f"{family}.") for name in trial.params)
        for device in ("cpu", "cuda"):
            est = build_estimator(family, problem_type, params, device=device, seed=0)
            got = est.get_params()
            for key, value in params.items():
                assert got[key] == value


def test_ranges_and_log_scales():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(30):
        trial = study.ask()
        p = suggest_params(trial, "lightgbm", "binary", max_trees=300)
        assert 50 <= p["n_estimators"] <= 300
        assert 0.01 <= p["learning_rate"] <= 0.3
        assert 8 <= p["num_leaves"] <= 256
        assert 0.5 <= p["subsample"] <= 1.0 and p["subsample_freq"] == 1
        dist = trial.distributions
        assert dist["lightgbm.learning_rate"].log and dist["lightgbm.reg_lambda"].log
        assert not dist["lightgbm.subsample"].log
        x = suggest_params(study.ask(), "xgboost", "regression")
        assert 2 <= x["max_depth"] <= 10 and 1e-8 <= x["reg_alpha"] <= 10
        c = suggest_params(study.ask(), "catboost", "multiclass")
        assert 3 <= c["depth"] <= 8 and 1.0 <= c["l2_leaf_reg"] <= 30
    assert set(suggest_params(study.ask(), "linear", "binary")) == {"C", "max_iter"}
    assert set(suggest_params(study.ask(), "linear", "regression")) == {"alpha"}


def test_fixed_trial_is_deterministic():
    fixed = optuna.trial.FixedTrial({"linear.C": 0.5})
    assert suggest_params(fixed, "linear", "multiclass") == {"C": 0.5, "max_iter": 2000}


def test_untunable_and_unknown():
    trial = optuna.create_study().ask()
    with pytest.raises(UntunableFamilyError, match="no search space"):
        suggest_params(trial, "dummy", "binary")
    with pytest.raises(ValueError, match="unknown model family"):
        suggest_params(trial, "svm", "binary")
    with pytest.raises(ValueError, match="unknown problem type"):
        suggest_params(trial, "linear", "ranking")
