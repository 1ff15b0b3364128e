"""Fan-in of training jobs: ranking their results best first."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from mlmesh_common.modeling import greater_is_better


class NoCandidatesError(ValueError):
    """No result with a usable score to rank (every job failed)."""


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def rank_candidates(results: Sequence[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """Return copies of ``results`` with a finite ``cv_mean``, best first, with ``rank`` 1..n.

    Direction follows ``greater_is_better(metric)``; ties go to the lower ``cv_std``, then to
    the family name. Results without a finite ``cv_mean`` (failed jobs) are left out.
    Raises ValueError when a result was scored with another metric.
    """
    higher = greater_is_better(metric)
    for r in results:
        if r.get("metric", metric) != metric:
            raise ValueError(
                f"result for {r.get('family')!r} was scored with {r.get('metric')!r}, not "
                f"{metric!r}; rank results of one metric only"
            )
    usable = [dict(r) for r in results if _finite(r.get("cv_mean"))]
    if not usable:
        raise NoCandidatesError(
            f"none of the {len(results)} results has a finite cv_mean; check the failed jobs"
        )

    def key(r: dict[str, Any]) -> tuple[float, float, str]:
        std = r.get("cv_std")
        return (
            -r["cv_mean"] if higher else r["cv_mean"],
            std if _finite(std) else math.inf,
            str(r.get("family", "")),
        )

    ranked = sorted(usable, key=key)
    for i, r in enumerate(ranked, start=1):
        r["rank"] = i
    return ranked
