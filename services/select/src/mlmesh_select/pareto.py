"""Pareto front over score, latency and size; constraints that filter candidates."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

MB = 1024 * 1024


class ConstraintError(ValueError):
    """No candidate satisfies the spec's latency / size constraints."""


def _num(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else math.nan


def pareto_optimal(candidates: Sequence[dict[str, Any]], *, greater_is_better: bool) -> list[bool]:
    """Whether each candidate is on the Pareto front of (cv_mean, latency_ms, size_bytes).

    A candidate is dominated when another is at least as good on all three and strictly
    better on one. A missing latency or size counts as worst on that axis.
    """
    sign = -1.0 if greater_is_better else 1.0

    def costs(c: dict[str, Any]) -> tuple[float, float, float]:
        values = (
            sign * _num(c.get("cv_mean")),
            _num(c.get("latency_ms")),
            _num(c.get("size_bytes")),
        )
        return tuple(math.inf if math.isnan(v) else v for v in values)

    points = [costs(c) for c in candidates]
    flags = []
    for i, p in enumerate(points):
        dominated = any(
            all(q[k] <= p[k] for k in range(3)) and any(q[k] < p[k] for k in range(3))
            for j, q in enumerate(points)
            if j != i
        )
        flags.append(not dominated)
    return flags


def apply_constraints(
    candidates: Sequence[dict[str, Any]],
    *,
    max_latency_ms: float = 0.0,
    max_model_size_mb: float = 0.0,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Keep the candidates within ``max_latency_ms`` and ``max_model_size_mb`` (0: no limit).

    Returns (kept candidates in their order, report). A candidate without a measured value
    for a constrained axis is excluded. Raises ConstraintError naming the constraint(s)
    and the best values available when nothing is left.
    """
    report: dict[str, Any] = {
        "max_latency_ms": max_latency_ms or None,
        "max_model_size_mb": max_model_size_mb or None,
        "excluded": [],
    }
    kept = []
    for c in candidates:
        reasons = []
        latency, size = _num(c.get("latency_ms")), _num(c.get("size_bytes"))
        if max_latency_ms and not latency <= max_latency_ms:
            reasons.append(f"latency {latency:.4g} ms > {max_latency_ms:g} ms")
        if max_model_size_mb and not size / MB <= max_model_size_mb:
            reasons.append(f"size {size / MB:.4g} MB > {max_model_size_mb:g} MB")
        if reasons:
            report["excluded"].append(
                {"family": c.get("family"), "rank": c.get("rank"), "reasons": reasons}
            )
        else:
            kept.append(c)
    report["n_kept"] = len(kept)
    if not kept and candidates:
        latencies = [v for v in (_num(c.get("latency_ms")) for c in candidates) if v == v]
        sizes = [v / MB for v in (_num(c.get("size_bytes")) for c in candidates) if v == v]
        parts = []
        if max_latency_ms:
            best = f"{min(latencies):.4g} ms" if latencies else "none measured"
            parts.append(f"max_latency_ms={max_latency_ms:g} (fastest candidate: {best})")
        if max_model_size_mb:
            best = f"{min(sizes):.4g} MB" if sizes else "none measured"
            parts.append(f"max_model_size_mb={max_model_size_mb:g} (smallest candidate: {best})")
        raise ConstraintError(
            f"no candidate satisfies {' and '.join(parts)} among {len(candidates)} candidates; "
            "relax the constraint or allow faster/smaller families (e.g. linear)"
        )
    return kept, report
