"""Seeded row samples that keep the table's row order."""

from __future__ import annotations

import numpy as np
import pandas as pd


def sample_table(df: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    """At most ``max_rows`` rows of ``df``, drawn with ``seed``, in their original order.

    The index is kept, so a sampled row still names its position in the table (the
    profile works on tables with a default 0..n-1 index). Tables within the limit are
    returned whole.
    """
    if max_rows < 1:
        raise ValueError(f"max_rows={max_rows} must be at least 1")
    if len(df) <= max_rows:
        return df
    rng = np.random.default_rng(seed)
    positions = np.sort(rng.choice(len(df), size=max_rows, replace=False))
    return df.iloc[positions]


def sample_positions(n: int, max_rows: int, seed: int) -> np.ndarray:
    """Sorted positions of a seeded sample of at most ``max_rows`` out of ``n``."""
    if n <= max_rows:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=max_rows, replace=False))
