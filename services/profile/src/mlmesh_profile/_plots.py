"""PNG plots of a profile: distributions, correlation heatmaps, missingness, the target.

Drawn with matplotlib's object API on the Agg canvas (no pyplot, no display, safe in
worker threads), from the profile's row sample.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mlmesh_profile._common import as_float

#: Columns drawn in distributions.png at most (the target first).
MAX_DISTRIBUTIONS = 24
#: Columns in a heatmap at most.
MAX_HEATMAP = 30
#: Columns and rows in the missingness plot at most.
MAX_MISSING_COLUMNS = 40
MAX_MISSING_ROWS = 300
MAX_CLASSES_SHOWN = 30
DPI = 80
PLOT_FILES = {"distributions": "distributions.png", "correlation": "correlation.png",
              "missingness": "missingness.png", "target": "target.png"}  # fmt: skip
_DRAWN_KINDS = ("numeric", "categorical", "boolean", "datetime")


def render_plots(
    sample: pd.DataFrame, profile: dict[str, Any], out_dir: Path
) -> dict[str, str]:
    """Write the plots that apply into ``out_dir``; return {plot name: file name}.

    Always ``distributions`` and ``target``; ``correlation`` when two or more numeric or
    categorical columns take part in the relations; ``missingness`` when a value is
    missing.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, draw in (("distributions", _distributions), ("correlation", _correlation),
                       ("missingness", _missingness), ("target", _target)):  # fmt: skip
        fig = draw(sample, profile)
        if fig is None:
            continue
        path = out_dir / PLOT_FILES[name]
        fig.savefig(path, dpi=DPI, format="png")
        written[name] = path.name
    return written


def _grid(n: int, per_row: int = 4, cell: tuple[float, float] = (3.6, 2.6)) -> tuple[Figure, list]:
    rows = max(1, math.ceil(n / per_row))
    cols = min(per_row, max(n, 1))
    height = cell[1] * rows + 0.9
    fig = Figure(figsize=(cell[0] * cols, height))
    # fixed margins: constrained layout costs seconds on a grid of 24 panels
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.35 / height, top=1 - 0.85 / height,
                        wspace=0.35, hspace=0.55)  # fmt: skip
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def _distributions(sample: pd.DataFrame, profile: dict[str, Any]) -> Figure:
    target = profile["target"]
    kinds = {c["name"]: c["kind"] for c in profile["columns"]}
    chosen = [target] + [c for c in sample.columns if c != target and kinds[c] in _DRAWN_KINDS]
    chosen = chosen[:MAX_DISTRIBUTIONS]
    fig, axes = _grid(len(chosen))
    for ax, name in zip(axes, chosen, strict=True):
        _draw_column(ax, sample[name], kinds[name])
        ax.set_title(("target: " if name == target else "") + _clip(name, 40), fontsize=9)
        ax.tick_params(labelsize=7)
    total = len([c for c in kinds if kinds[c] in _DRAWN_KINDS or c == target])
    note = f" (first {len(chosen)} of {total})" if total > len(chosen) else ""
    fig.suptitle(f"Distributions on {len(sample)} sampled rows{note}", fontsize=11,
                 y=1 - 0.2 / fig.get_figheight())  # fmt: skip
    return fig


def _draw_column(ax, s: pd.Series, kind: str) -> None:
    if kind == "numeric":
        values = as_float(s)
        values = values[np.isfinite(values)]
        distinct = np.unique(values)
        if 0 < distinct.size <= 20:  # few values: a bar per value reads better than bins
            counts = pd.Series(values).value_counts().sort_index()
            ax.bar([f"{v:g}" for v in counts.index], counts.to_numpy(), color="#4c78a8")
        elif values.size:
            ax.hist(values, bins=40, color="#4c78a8", histtype="stepfilled")
        return
    if kind == "datetime":
        parsed = (s if pd.api.types.is_datetime64_any_dtype(s)
                  else pd.to_datetime(s.astype(str), errors="coerce", format="mixed"))  # fmt: skip
        parsed = parsed.dropna()
        if not parsed.empty:
            ax.hist(parsed.to_numpy(), bins=40, color="#72b7b2", histtype="stepfilled")
            ax.tick_params(axis="x", rotation=30)
        return
    try:
        counts = s.dropna().value_counts()
    except TypeError:
        counts = s.dropna().astype(str).value_counts()
    counts = counts.head(10)[::-1]
    ax.barh([_clip(str(v), 18) for v in counts.index], counts.to_numpy(), color="#f58518")


def _correlation(sample: pd.DataFrame, profile: dict[str, Any]) -> Figure | None:
    relations = profile["relations"]
    panels = []
    spearman = relations["spearman"]
    if len(spearman["columns"]) >= 2:
        panels.append(("Spearman (numbers)", spearman["columns"], spearman["matrix"], -1.0))
    cramers = relations["cramers_v"]
    if len(cramers["columns"]) >= 2:
        panels.append(("Cramér's V (categories)", cramers["columns"], cramers["matrix"], 0.0))
    if not panels:
        return None
    size = max(min(max(len(p[1]) for p in panels), MAX_HEATMAP) * 0.32 + 2.5, 4.5)
    fig = Figure(figsize=(size * len(panels) + 1, size), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False).ravel()
    for ax, (title, names, matrix, low) in zip(axes, panels, strict=True):
        names = names[:MAX_HEATMAP]
        k = len(names)
        values = np.array([[np.nan if v is None else v for v in row[:k]] for row in matrix[:k]])
        image = ax.imshow(values, vmin=low, vmax=1.0, cmap="RdBu_r" if low < 0 else "viridis")
        ax.set_xticks(range(k), [_clip(n, 16) for n in names], rotation=90, fontsize=7)
        ax.set_yticks(range(k), [_clip(n, 16) for n in names], fontsize=7)
        if k <= 12:
            for i in range(k):
                for j in range(k):
                    if np.isfinite(values[i, j]):
                        dark = abs(values[i, j]) > 0.6 if low < 0 else values[i, j] < 0.4
                        ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center",
                                fontsize=6, color="white" if dark else "black")  # fmt: skip
        ax.set_title(title, fontsize=10)
        fig.colorbar(image, ax=ax, shrink=0.8)
    return fig


def _missingness(sample: pd.DataFrame, profile: dict[str, Any]) -> Figure | None:
    missing = sorted((c for c in profile["columns"] if c["missing"]),
                     key=lambda c: -c["missing_share"])[:MAX_MISSING_COLUMNS]  # fmt: skip
    if not missing:
        return None
    names = [c["name"] for c in missing]
    fig = Figure(figsize=(12, max(3.0, 0.25 * len(names) + 1.5)), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.4])
    left.barh([_clip(n, 24) for n in names][::-1], [c["missing_share"] for c in missing][::-1],
              color="#e45756")  # fmt: skip
    left.set_xlim(0, 1)
    left.set_xlabel("share missing (all rows)")
    left.tick_params(labelsize=7)
    rows = sample[names].head(MAX_MISSING_ROWS).isna().to_numpy()
    right.imshow(rows.T, aspect="auto", cmap="Greys", interpolation="nearest", vmin=0, vmax=1)
    right.set_yticks(range(len(names)), [_clip(n, 24) for n in names], fontsize=7)
    right.set_xlabel(f"first {rows.shape[0]} sampled rows (black = missing)")
    fig.suptitle("Missing values", fontsize=11)
    return fig


def _target(sample: pd.DataFrame, profile: dict[str, Any]) -> Figure:
    target, task = profile["target"], profile["task"]
    balance = profile["class_balance"]
    if profile["problem_type"] != "regression":
        fig = Figure(figsize=(7, max(3.0, 0.28 * min(len(balance), MAX_CLASSES_SHOWN) + 1.2)),
                     layout="constrained")  # fmt: skip
        ax = fig.subplots()
        shown = sorted(balance.items(), key=lambda kv: -kv[1])[:MAX_CLASSES_SHOWN][::-1]
        ax.barh([_clip(k, 30) for k, _ in shown], [v for _, v in shown], color="#54a24b")
        ax.set_xlabel("rows (all rows)")
        more = (f", top {MAX_CLASSES_SHOWN} of {len(balance)}"
                if len(balance) > MAX_CLASSES_SHOWN else "")  # fmt: skip
        ax.set_title(f"Target '{_clip(target, 40)}': {task['kind']}{more}", fontsize=10)
        ax.tick_params(labelsize=7)
        return fig
    values = as_float(sample[target])
    if task["kind"] == "time_series_forecasting":
        fig = Figure(figsize=(11, 3.6), layout="constrained")
        line, hist = fig.subplots(1, 2, width_ratios=[2.2, 1])
        time = sample[task["time_column"]]
        if not pd.api.types.is_datetime64_any_dtype(time):
            time = pd.to_datetime(time.astype(str), errors="coerce", format="mixed")
        line.plot(time.to_numpy(), values, lw=0.8, color="#4c78a8")
        line.set_title(f"'{_clip(target, 30)}' over '{_clip(task['time_column'], 30)}'",
                       fontsize=10)  # fmt: skip
        line.tick_params(labelsize=7)
    else:
        fig = Figure(figsize=(6, 3.6), layout="constrained")
        hist = fig.subplots()
    finite = values[np.isfinite(values)]
    if finite.size:
        hist.hist(finite, bins=50, color="#54a24b", histtype="stepfilled")
    hist.set_title(f"Target '{_clip(target, 30)}': {task['kind']}", fontsize=10)
    hist.tick_params(labelsize=7)
    return fig


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
