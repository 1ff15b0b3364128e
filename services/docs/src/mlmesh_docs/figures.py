"""Figures of the report and white paper, drawn with matplotlib's Agg backend into PNG files.

Each function returns a ``Figure`` record (file name, caption); ``draw_figures`` writes the
PNGs into a folder. The HTML report embeds them as base64 data URIs, the white paper
includes them with ``\\includegraphics``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from mlmesh_docs.evaluation import Evaluation

DPI = 110


@dataclass(frozen=True)
class Figure:
    """One written figure: its key, PNG path and caption."""

    key: str
    path: Path
    caption: str

    def data_uri(self) -> str:
        """The PNG as a ``data:image/png;base64,...`` URI for self-contained HTML."""
        return "data:image/png;base64," + base64.b64encode(self.path.read_bytes()).decode()


def draw_figures(
    evaluation: Evaluation, tuning: Mapping[str, Any] | None, out_dir: Path
) -> dict[str, Figure]:
    """Draw every figure the evaluation supports into ``out_dir``; returns them by key."""
    out_dir.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Figure] = {}

    def save(key: str, fig: plt.Figure, caption: str) -> None:
        path = out_dir / f"{key}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=DPI, format="png")
        plt.close(fig)
        figures[key] = Figure(key, path, caption)

    facts, curves = evaluation.facts, evaluation.curves
    if evaluation.problem_type == "regression":
        save("residuals", _residuals(curves["residuals"]),
             "Residuals (actual minus predicted) against the predicted value on the test split.")
        save("qq", _qq(curves["residuals"]["residuals"]),
             "Normal Q-Q plot of the test residuals.")
    else:
        save("confusion_matrix", _confusion(facts["confusion_matrix"], facts["classes"]),
             "Confusion matrix on the test split (rows: actual class, columns: predicted).")
        if curves.get("roc"):
            save("roc", _roc(curves["roc"]), "ROC curves on the test split (one vs rest).")
            save("pr", _pr(curves["pr"]),
                 "Precision-recall curves on the test split (one vs rest).")
    if curves.get("calibration"):
        save("calibration", _calibration(curves["calibration"], evaluation.problem_type),
             "Calibration on the test split: observed against predicted, per quantile bin.")
    if facts.get("importance"):
        save("importance", _importance(facts["importance"], evaluation.metric),
             f"Permutation importance on the test split (drop in {evaluation.metric}).")
    history = _tuning_points(tuning)
    if history:
        save("tuning_history", _tuning(history, evaluation.metric),
             "Tuning history: cross-validated score of each trial and the best so far.")
    return figures


def _figure(width: float = 5.0, height: float = 3.6) -> tuple[plt.Figure, Any]:
    return plt.subplots(figsize=(width, height))


def _confusion(matrix: Sequence[Sequence[int]], classes: Sequence[str]) -> plt.Figure:
    m = np.asarray(matrix)
    size = max(3.6, 0.5 * len(classes) + 2.5)
    fig, ax = _figure(size + 0.8, size)
    image = ax.imshow(m, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046)
    ax.set_xticks(range(len(classes)), [c[:14] for c in classes], rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), [c[:14] for c in classes])
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    threshold = m.max() / 2 if m.size else 0
    if len(classes) <= 15:
        for (i, j), value in np.ndenumerate(m):
            ax.text(j, i, str(value), ha="center", va="center",
                    color="white" if value > threshold else "black", fontsize=9)
    return fig


def _roc(rocs: Sequence[Mapping[str, Any]]) -> plt.Figure:
    fig, ax = _figure()
    for c in rocs[:10]:
        ax.plot(c["fpr"], c["tpr"], label=f"{c['label'][:14]} (AUC {c['auc']:.3f})")
    ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(fontsize=8, loc="lower right")
    return fig


def _pr(prs: Sequence[Mapping[str, Any]]) -> plt.Figure:
    fig, ax = _figure()
    for c in prs[:10]:
        ax.step(c["recall"], c["precision"], where="post",
                label=f"{c['label'][:14]} (AP {c['ap']:.3f})")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8, loc="lower left")
    return fig


def _calibration(cal: Mapping[str, Any], problem_type: str) -> plt.Figure:
    fig, ax = _figure()
    predicted, observed = np.asarray(cal["predicted"]), np.asarray(cal["observed"])
    lo = float(min(predicted.min(), observed.min()))
    hi = float(max(predicted.max(), observed.max()))
    if problem_type != "regression":
        lo, hi = 0.0, 1.0
    ax.plot([lo, hi], [lo, hi], "--", color="grey", linewidth=1, label="perfect")
    ax.plot(predicted, observed, "o-", label="model")
    if problem_type == "regression":
        ax.set_xlabel("mean predicted value (bin)")
        ax.set_ylabel("mean actual value (bin)")
    else:
        ax.set_xlabel("predicted class probability (bin mean)")
        ax.set_ylabel("observed frequency of the class")
    ax.legend(fontsize=8)
    return fig


def _importance(rows: Sequence[Mapping[str, Any]], metric: str) -> plt.Figure:
    top = list(rows[:15])[::-1]
    fig, ax = _figure(5.5, max(2.4, 0.3 * len(top) + 1.2))
    ax.barh([r["feature"][:24] for r in top], [r["mean"] for r in top],
            xerr=[r["std"] for r in top], color="#2f6fde")
    ax.axvline(0, color="grey", linewidth=1)
    ax.set_xlabel(f"drop in {metric} when the column is shuffled")
    return fig


def _residuals(res: Mapping[str, Any]) -> plt.Figure:
    fig, ax = _figure()
    ax.scatter(res["predicted"], res["residuals"], s=12, alpha=0.7)
    ax.axhline(0, color="grey", linewidth=1)
    ax.set_xlabel("predicted")
    ax.set_ylabel("residual (actual - predicted)")
    return fig


def _qq(residuals: np.ndarray) -> plt.Figure:
    fig, ax = _figure(4.2, 3.6)
    (theoretical, ordered), (slope, intercept, _) = stats.probplot(residuals, dist="norm")
    ax.scatter(theoretical, ordered, s=12, alpha=0.7)
    ax.plot(theoretical, slope * np.asarray(theoretical) + intercept, color="grey", linewidth=1)
    ax.set_xlabel("theoretical normal quantiles")
    ax.set_ylabel("ordered residuals")
    return fig


def _tuning_points(tuning: Mapping[str, Any] | None) -> list[tuple[int, float]]:
    if not tuning:
        return []
    points = []
    for i, trial in enumerate(tuning.get("history") or []):
        value = trial.get("value")
        state = str(trial.get("state", "COMPLETE")).upper()
        if state == "COMPLETE" and isinstance(value, int | float) and np.isfinite(value):
            points.append((int(trial.get("number", i)), float(value)))
    return sorted(points) if len(points) >= 2 else []


def _tuning(points: list[tuple[int, float]], metric: str) -> plt.Figure:
    from mlmesh_common.modeling import greater_is_better

    try:
        maximise = greater_is_better(metric)
    except ValueError:
        maximise = True
    fig, ax = _figure(5.5, 3.2)
    xs = [n for n, _ in points]
    ys = [v for _, v in points]
    best = np.maximum.accumulate(ys) if maximise else np.minimum.accumulate(ys)
    ax.scatter(xs, ys, s=14, alpha=0.7, label="trial")
    ax.step(xs, best, where="post", color="#c23a3a", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"CV {metric}")
    ax.legend(fontsize=8)
    return fig
