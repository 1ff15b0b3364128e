"""Which families to tune, and which family each new trial explores."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .spaces import TUNABLE_FAMILIES


class NothingToTuneError(ValueError):
    """No tunable family among the training results."""


def pick_families(ranked_results: Sequence[dict[str, Any]], *, top_k: int = 2) -> list[str]:
    """The ``top_k`` best tunable families from training results ranked best first."""
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1; got {top_k}")
    chosen: list[str] = []
    for result in ranked_results:
        family = result.get("family")
        if family in TUNABLE_FAMILIES and family not in chosen:
            chosen.append(family)
        if len(chosen) == top_k:
            break
    if not chosen:
        raise NothingToTuneError(
            "no tunable family among the training results "
            f"(tunable: {', '.join(TUNABLE_FAMILIES)}); check that training succeeded"
        )
    return chosen


def family_for_trial(trial_index: int, families: Sequence[str]) -> str:
    """Round-robin: the family the ``trial_index``-th trial (0-based) explores."""
    if not families:
        raise NothingToTuneError("no families to tune")
    if trial_index < 0:
        raise ValueError(f"trial_index must be >= 0; got {trial_index}")
    return families[trial_index % len(families)]


def next_family(
    counts: Mapping[str, int], families: Sequence[str], limits: Mapping[str, int | None]
) -> str | None:
    """The family the next trial explores: the one with the fewest trials so far (ties in
    ``families`` order, i.e. round-robin) among those below their limit (a grid search's
    number of points); None when every family is exhausted."""
    if not families:
        raise NothingToTuneError("no families to tune")
    open_ = [f for f in families if limits.get(f) is None or counts.get(f, 0) < limits[f]]
    if not open_:
        return None
    return min(open_, key=lambda f: (counts.get(f, 0), families.index(f)))
