"""Plain-language facts about an experiment and the template narrative built from them.

``build_facts`` reduces the report's view model to the few numbers a non-technical reader
needs; ``template_narrative`` turns them into prose through ``narrative.md.j2``. The
optional LLM writer (``mlmesh_docs.llm``) may rewrite that prose from the same facts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlmesh_docs.reports import _environment, fmt_metric

#: What each metric means, in words, for readers who do not know the name.
METRIC_WORDS = {
    "accuracy": "the share of test rows whose class it predicts correctly",
    "balanced_accuracy": "the average, over classes, of the share of each class predicted "
                         "correctly",
    "f1_macro": "the balance of precision and recall averaged over classes",
    "roc_auc": "how well it ranks positive rows above negative ones (0.5 is chance, 1 is "
               "perfect)",
    "log_loss": "how confident and correct its probabilities are (lower is better)",
    "rmse": "the typical size of its errors, in the target's units (lower is better)",
    "mae": "the average size of its errors, in the target's units (lower is better)",
    "r2": "the share of the target's variation it explains (1 is perfect, 0 is no better "
          "than predicting the average)",
}

_FAMILY_WORDS = {
    "dummy": "a trivial baseline that ignores the inputs",
    "linear": "a linear model",
    "lightgbm": "a gradient-boosted tree ensemble (LightGBM)",
    "xgboost": "a gradient-boosted tree ensemble (XGBoost)",
    "catboost": "a gradient-boosted tree ensemble (CatBoost)",
    "gaussian_process": "a Gaussian process (a smooth curve fitted through the data, with "
                        "irrelevant inputs switched off)",
}


def build_facts(view: Mapping[str, Any]) -> dict[str, Any]:
    """The executive facts: JSON-ready, numbers already formatted as they will be printed."""
    winner, data, evaluation = view["winner"], view["data"], view.get("evaluation")
    metric = view["metric"]
    headline = None
    if evaluation:
        headline = next((m for m in evaluation["metrics"] if m["name"] == metric), None)
    facts: dict[str, Any] = {
        "experiment_id": view["spec"]["experiment_id"],
        "dataset": view["spec"]["dataset_uri"],
        "target": data["target"],
        "problem_type": data["problem_type"],
        "n_rows": data["n_rows"],
        "n_features": len(view["prep"]["feature_columns"]),
        "model": winner["family"],
        "model_in_words": _FAMILY_WORDS.get(winner["family"], winner["family"]),
        "metric": metric,
        "metric_in_words": METRIC_WORDS.get(metric, metric),
        "test_score": fmt_metric(winner["test_score"]),
        "baseline_score": fmt_metric(winner["baseline_test_score"]),
        "beats_baseline": winner["beats_baseline"],
        "n_candidates": len(view["leaderboard"]),
        "n_trials": (view["tuning"] or {}).get("n_trials") if view.get("tuning") else 0,
        "n_test": winner.get("n_test") or (evaluation or {}).get("n_test"),
    }
    if headline and headline["low"] is not None:
        facts["ci_low"] = fmt_metric(headline["low"])
        facts["ci_high"] = fmt_metric(headline["high"])
    if evaluation and evaluation["importance"]:
        facts["top_features"] = [r["feature"] for r in evaluation["importance"][:3]
                                 if r["mean"] > 0]
    if evaluation and evaluation["per_class"]:
        worst = max(evaluation["per_class"], key=lambda c: c["error_rate"] or 0)
        if worst["errors"]:
            facts["hardest_class"] = worst["label"]
            facts["hardest_class_error_rate"] = f"{100 * worst['error_rate']:.1f}%"
    return facts


def template_narrative(facts: Mapping[str, Any]) -> str:
    """The narrative paragraphs written by the template from ``facts`` (Markdown)."""
    text = _environment(autoescape=False).get_template("narrative.md.j2").render(facts=facts)
    return text.strip()
