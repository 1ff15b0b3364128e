"""Train/valid/test splits and the one fold assignment every candidate shares.

Strategies: ``stratified`` (classification default), ``random``, ``group`` (rows sharing a
value of the group column never cross a split or a fold) and ``time`` (chronological
holdout: test = latest rows, valid = the ones before; folds are contiguous time blocks,
fold k later than fold k-1, so forward chaining = train on folds < k).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import (
    GroupKFold,
    GroupShuffleSplit,
    KFold,
    StratifiedGroupKFold,
    StratifiedKFold,
    train_test_split,
)

from mlmesh_common.preprocessing import to_datetime

STRATEGIES = ("random", "stratified", "group", "time")


class SplitError(ValueError):
    """The split cannot be made as asked (bad sizes, too few rows or groups)."""


class NotEnoughRowsError(SplitError):
    """Too few usable rows to make non-empty splits and folds."""


@dataclass
class Split:
    """Row positions of each split, the train rows' folds and how they were made."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    folds: np.ndarray
    strategy: str
    stratified: bool
    fold_strategy: str
    fold_order: str = "random"


def _sizes(n: int, test_size: float, valid_size: float, n_folds: int) -> tuple[int, int, int]:
    n_test = math.ceil(test_size * n)
    n_valid = math.ceil(valid_size / (1 - test_size) * (n - n_test))
    n_train = n - n_test - n_valid
    if n_test < 1 or n_valid < 1 or n_train < max(n_folds, 2):
        raise NotEnoughRowsError(
            f"{n} usable rows are too few for test_size={test_size}, valid_size={valid_size} "
            f"and {n_folds} folds (train would get {n_train}); give more rows or fewer folds"
        )
    return n_train, n_valid, n_test


def split_rows(
    n: int,
    strategy: str,
    *,
    labels: pd.Series | None,
    groups: pd.Series | None,
    times: pd.Series | None,
    seed: int,
    test_size: float,
    valid_size: float,
    n_folds: int,
    notes: list[str],
) -> Split:
    """Split ``n`` rows with ``strategy`` and assign ``n_folds`` folds to the train rows.

    ``labels`` (classification targets) drive stratification, ``groups`` the group
    strategy and ``times`` the time strategy.
    """
    if strategy == "time":
        if times is None:
            raise SplitError("split_strategy=time needs a time column")
        return _time_split(times, test_size, valid_size, n_folds)
    if strategy == "group":
        if groups is None:
            raise SplitError("split_strategy=group needs a group column")
        return _group_split(groups, labels, seed, test_size, valid_size, n_folds, notes)
    use_labels = labels if strategy == "stratified" else None
    train, valid, test, stratified = _random_split(
        n, use_labels, seed, test_size, valid_size, n_folds, notes
    )
    fold_labels = None if (use_labels is None or not stratified) else use_labels.iloc[train]
    folds, fold_strategy = _assign_folds(len(train), fold_labels, n_folds, seed, notes)
    return Split(train, valid, test, folds, "stratified" if stratified else "random",
                 stratified, fold_strategy)  # fmt: skip


def _random_split(
    n: int,
    labels: pd.Series | None,
    seed: int,
    test_size: float,
    valid_size: float,
    n_folds: int,
    notes: list[str],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    _, n_valid, n_test = _sizes(n, test_size, valid_size, n_folds)
    positions = np.arange(n)
    stratified = labels is not None
    if labels is not None:
        smallest = labels.value_counts()
        if smallest.min() < 3:
            rare = ", ".join(map(str, smallest[smallest < 3].index))
            notes.append(
                f"class(es) {rare} have fewer than 3 rows, too few to appear in every split; "
                "the split is random, not stratified"
            )
            stratified = False

    def cut(idx: np.ndarray, size: int, strat: np.ndarray | None) -> tuple[np.ndarray, ...]:
        nonlocal stratified
        if stratified and strat is not None:
            try:
                return tuple(
                    train_test_split(idx, test_size=size, random_state=seed, stratify=strat)
                )
            except ValueError as exc:
                notes.append(f"stratified split impossible ({exc}); the split is random")
                stratified = False
        return tuple(train_test_split(idx, test_size=size, random_state=seed))

    strat_all = None if labels is None else labels.to_numpy()
    rest, test_idx = cut(positions, n_test, strat_all)
    strat_rest = None if strat_all is None else strat_all[rest]
    train_idx, valid_idx = cut(rest, n_valid, strat_rest)
    return np.sort(train_idx), np.sort(valid_idx), np.sort(test_idx), stratified


def _assign_folds(
    n_train: int, labels: pd.Series | None, n_folds: int, seed: int, notes: list[str]
) -> tuple[np.ndarray, str]:
    folds = np.full(n_train, -1, dtype=np.int64)
    placeholder = np.zeros(n_train)
    if labels is not None:
        splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                for fold, (_, idx) in enumerate(splitter.split(placeholder, labels.to_numpy())):
                    folds[idx] = fold
            notes.extend(f"folds: {w.message}" for w in caught)
            return folds, "StratifiedKFold"
        except ValueError as exc:
            notes.append(f"stratified folds impossible ({exc}); folds are random")
    splitter_plain = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for fold, (_, idx) in enumerate(splitter_plain.split(placeholder)):
        folds[idx] = fold
    return folds, "KFold"


def _time_split(times: pd.Series, test_size: float, valid_size: float, n_folds: int) -> Split:
    """Test = the latest rows, valid = the ones before, train = the rest (oldest first).

    Rows whose time is missing or unreadable count as the oldest. Train rows are returned
    in time order and folds are consecutive blocks of them.
    """
    n_train, n_valid, _ = _sizes(len(times), test_size, valid_size, n_folds)
    parsed = times if pd.api.types.is_numeric_dtype(times) else to_datetime(times)
    if pd.api.types.is_numeric_dtype(parsed):
        keys = parsed.to_numpy(dtype=np.float64, na_value=-np.inf)
    else:
        keys = parsed.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    order = np.argsort(keys, kind="stable")
    folds = np.empty(n_train, dtype=np.int64)
    for fold, (_, idx) in enumerate(KFold(n_splits=n_folds).split(np.zeros(n_train))):
        folds[idx] = fold
    return Split(order[:n_train], order[n_train:n_train + n_valid], order[n_train + n_valid:],
                 folds, "time", False, "KFold (contiguous blocks in time order)",
                 "time")  # fmt: skip


def _group_split(
    groups: pd.Series,
    labels: pd.Series | None,
    seed: int,
    test_size: float,
    valid_size: float,
    n_folds: int,
    notes: list[str],
) -> Split:
    """Whole groups go to test, valid and train (GroupShuffleSplit); folds by group.

    Folds use StratifiedGroupKFold for classification (GroupKFold when that fails or for
    regression). Missing group values form one group.
    """
    keys = groups.astype("string").fillna("__missing__").to_numpy()
    n_groups = len(pd.unique(keys))
    if n_groups < n_folds + 2:
        raise SplitError(
            f"the group column has {n_groups} distinct groups; a group split into test, valid "
            f"and {n_folds} folds needs at least {n_folds + 2}; choose another group column, "
            "fewer folds or another split_strategy"
        )
    if groups.isna().any():
        notes.append(f"{int(groups.isna().sum())} rows without a group value form one group")
    positions = np.arange(len(keys))
    outer = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
    rest, test = next(outer.split(positions, groups=keys))
    inner = GroupShuffleSplit(n_splits=1, test_size=valid_size / (1 - test_size),
                              random_state=seed)  # fmt: skip
    train_in_rest, valid_in_rest = next(inner.split(rest, groups=keys[rest]))
    train, valid = np.sort(rest[train_in_rest]), np.sort(rest[valid_in_rest])
    train_keys = keys[train]
    if len(pd.unique(train_keys)) < n_folds:
        raise SplitError(
            f"after the group split, train holds {len(pd.unique(train_keys))} groups, fewer "
            f"than n_folds={n_folds}; give more groups or fewer folds"
        )
    folds = np.full(len(train), -1, dtype=np.int64)
    fold_strategy = "GroupKFold"
    stratified = False
    if labels is not None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
                parts = list(splitter.split(train, labels.to_numpy()[train], groups=train_keys))
            if all(len(idx) for _, idx in parts):
                for fold, (_, idx) in enumerate(parts):
                    folds[idx] = fold
                fold_strategy, stratified = "StratifiedGroupKFold", True
        except ValueError as exc:
            notes.append(f"stratified group folds impossible ({exc}); GroupKFold instead")
    if not stratified:
        for fold, (_, idx) in enumerate(
            GroupKFold(n_splits=n_folds).split(train, groups=train_keys)
        ):
            folds[idx] = fold
    return Split(train, valid, np.sort(test), folds, "group", stratified, fold_strategy)
