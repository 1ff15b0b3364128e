"""Profile benchmark: a generated 1M-row, 50-column table of mixed kinds, profiled end to
end (statistics, relations, quality checks, plots and the HTML report).

Prints the seconds each part took, the total wall time (the target is under 60 s on 2
cores), the process CPU time and the load average before the run (other work on the
machine slows the wall time). It asserts nothing: the number printed is the measurement.

    python -m benchmarks.profile [--rows 1000000] [--columns 50] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mlmesh_profile import build_profile


def make_table(rows: int, columns: int, seed: int) -> pd.DataFrame:
    """A table of ``columns`` columns cycling through numeric, categorical, boolean, text
    id, datetime and integer kinds, with missing values, a planted correlation, and a
    binary target that depends on a few of the columns."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    base = rng.normal(size=rows)
    makers = [
        lambda i: rng.normal(i, 1 + i % 3, rows),                                 # float
        lambda i: rng.choice([f"c{i}_{k}" for k in range(8 + i % 20)], rows),     # category
        lambda i: rng.integers(0, 1000, rows),                                    # integer
        lambda i: base * (0.5 + i % 4) + rng.normal(scale=0.1, size=rows),        # correlated
        lambda i: rng.random(rows) < 0.3,                                         # boolean
        lambda i: rng.lognormal(0, 1, rows),                                      # skewed
        lambda i: np.where(rng.random(rows) < 0.2, np.nan, rng.normal(size=rows)),  # missing
    ]  # fmt: skip
    for i in range(columns - 4):
        data[f"f{i:02d}_{['num', 'cat', 'int', 'corr', 'bool', 'skew', 'miss'][i % 7]}"] = (
            makers[i % 7](i)
        )
    data["order_id"] = np.arange(rows) + 10_000_000
    data["created"] = pd.Timestamp("2020-01-01") + pd.to_timedelta(
        rng.integers(0, 3 * 365 * 24 * 3600, rows), unit="s"
    )
    data["city"] = pd.Series(rng.choice([f"city_{k}" for k in range(5000)], rows))
    logit = base + 0.5 * (data["f00_num"] - 0) - 0.3 * data["f05_skew"]
    data["target"] = np.where(rng.random(rows) < 1 / (1 + np.exp(-logit)), "yes", "no")
    return pd.DataFrame(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--columns", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    started = time.perf_counter()
    df = make_table(args.rows, args.columns, args.seed)
    print(f"generated {len(df):,} rows x {df.shape[1]} columns "
          f"({df.memory_usage(deep=True).sum() / 1e6:.0f} MB in memory) in "
          f"{time.perf_counter() - started:.1f} s")  # fmt: skip
    marks: list[tuple[float, str]] = []
    load_before = os.getloadavg()[0]

    def on_step(fraction: float, message: str) -> None:
        marks.append((time.perf_counter(), message))

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "profile"
        cpu_start, start = time.process_time(), time.perf_counter()
        profile = build_profile(df, out, on_step=on_step)
        total = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        sizes = {p.relative_to(out).as_posix(): p.stat().st_size for p in out.rglob("*")
                 if p.is_file()}  # fmt: skip

    previous, label = start, "start"
    for when, message in [*marks, (start + total, "done")]:
        if when - previous >= 0.05:
            print(f"  {when - previous:6.2f} s  {label}")
        previous, label = when, message
    print(f"target {profile['target']!r} ({profile['task']['kind']}, metric {profile['metric']}); "
          f"{len(profile['recommendations'])} recommendations, {len(profile['warnings'])} "
          "warnings")  # fmt: skip
    listed = ", ".join(f"{name} {size / 1e3:.0f} kB" for name, size in sorted(sizes.items()))
    print(f"files: {listed}")
    print(f"cpus available: {len(os.sched_getaffinity(0))}; load average before: "
          f"{load_before:.1f}; process CPU time: {cpu:.1f} s")  # fmt: skip
    print(f"profile of {len(df):,} x {df.shape[1]}: {total:.1f} s (target < 60 s on 2 cores)")


if __name__ == "__main__":
    main()
