"""Acquire benchmark: a generated CSV (2 GB by default) converted to Parquet by ``to_parquet``.

The CSV is generated block by block (mixed integer, float, categorical, boolean, date and
free-text columns) so generating it stays small in memory too. The conversion runs in a child
process; its peak RSS comes from ``resource.getrusage(RUSAGE_CHILDREN)`` after it exits, so
it covers the whole conversion and nothing else. Prints throughput (MB/s of CSV) and peak
RSS against the 1 GB target, plus the child's CPU time (less sensitive to a busy machine than
the wall-clock MB/s); it asserts nothing.

    python -m benchmarks.acquire [--size-mb 2048] [--dir /big/tmp] [--keep]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

ROWS_PER_BLOCK = 200_000
TARGET_PEAK_RSS_MB = 1024
CITIES = np.array(["Amsterdam", "Berlin", "Lisbon", "Madrid", "Oslo", "Paris", "Rome",
                   "Vienna", "Warsaw", "Zürich"])
PLANS = np.array(["free", "basic", "pro", "enterprise"])


def _block(rng: np.random.Generator, start: int, n: int) -> pa.Table:
    ids = np.arange(start, start + n)
    return pa.table({
        "id": ids,
        "age": rng.integers(18, 90, n),
        "income": rng.lognormal(10, 0.6, n).round(2),
        "score": rng.normal(0, 1, n).round(6),
        "ratio": rng.random(n).round(5),
        "visits": rng.poisson(3, n),
        "city": CITIES[rng.integers(0, len(CITIES), n)],
        "plan": PLANS[rng.integers(0, len(PLANS), n)],
        "customer": np.char.add("C", (ids * 7919 % 1_000_003).astype(str)),
        "active": rng.random(n) < 0.7,
        "signup": (np.datetime64("2015-01-01") + rng.integers(0, 3650, n)).astype("datetime64[D]"),
        "note": np.where(rng.random(n) < 0.2, "called twice, left a message", ""),
        "churned": rng.integers(0, 2, n),
    })


def generate_csv(path: Path, size_bytes: int, seed: int = 0) -> tuple[int, int]:
    """Write a CSV of about ``size_bytes``; returns (rows, bytes). Streams block by block."""
    rng = np.random.default_rng(seed)
    rows = 0
    with pa.OSFile(str(path), "wb") as sink:
        writer = None
        while sink.tell() < size_bytes:
            table = _block(rng, rows, ROWS_PER_BLOCK)
            if writer is None:
                writer = pacsv.CSVWriter(sink, table.schema)
            writer.write_table(table)
            rows += table.num_rows
        if writer is not None:
            writer.close()
    return rows, path.stat().st_size


def _convert_child(source: str, target: str) -> None:
    """Runs in the child process: convert and print what happened as JSON."""
    from mlmesh_acquire.tables import to_parquet

    started = time.perf_counter()
    info = to_parquet(Path(source), Path(target))
    elapsed = time.perf_counter() - started
    print(json.dumps({"seconds": elapsed, "rows": info.n_rows, "columns": info.n_columns,
                      "format": info.format, "warnings": info.warnings}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=2048, help="CSV size to generate")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the files")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--convert", nargs=2, metavar=("CSV", "PARQUET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.convert:
        _convert_child(*args.convert)
        return

    workdir = Path(tempfile.mkdtemp(prefix="mlmesh-bench-acquire-", dir=args.dir))
    try:
        source = workdir / "generated.csv"
        target = workdir / "generated.parquet"
        started = time.perf_counter()
        rows, size = generate_csv(source, args.size_mb * 1024**2)
        generated_s = time.perf_counter() - started
        generator_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"generated {size / 1e6:,.0f} MB CSV ({rows:,} rows x 13 columns) in "
              f"{generated_s:.1f} s; generator peak RSS {generator_rss_mb:,.0f} MB")

        child = subprocess.run(
            [sys.executable, "-m", "benchmarks.acquire", "--convert", str(source), str(target)],
            capture_output=True, text=True, check=False,
        )
        if child.returncode != 0:
            print(child.stdout, child.stderr, sep="\n")
            raise SystemExit(f"conversion failed with exit code {child.returncode}")
        result = json.loads(child.stdout.strip().splitlines()[-1])
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak_rss_mb = usage.ru_maxrss / 1024
        cpu_s = usage.ru_utime + usage.ru_stime
        parquet_rows = pq.ParquetFile(target).metadata.num_rows
        mb_per_s = size / 1e6 / result["seconds"]
        verdict = "met" if peak_rss_mb < TARGET_PEAK_RSS_MB else "MISSED"
        print(f"to_parquet: {result['rows']:,} rows x {result['columns']} columns "
              f"({result['format']}) in {result['seconds']:.1f} s = {mb_per_s:,.1f} MB/s "
              f"(child CPU time {cpu_s:.1f} s, incl. start-up)")
        print(f"conversion peak RSS: {peak_rss_mb:,.0f} MB (target < {TARGET_PEAK_RSS_MB} MB: "
              f"{verdict})")
        print(f"parquet: {target.stat().st_size / 1e6:,.0f} MB, {parquet_rows:,} rows "
              f"({'all rows' if parquet_rows == rows else 'ROW COUNT DIFFERS'})")
        if result["warnings"]:
            print("warnings:", *result["warnings"], sep="\n  ")
    finally:
        if args.keep:
            print(f"files kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
