"""The profile folder: profile.json, PNG plots, a self-contained HTML report; progress
steps; bounded work on wide tables."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from palmerpenguins import load_penguins

from mlmesh_profile import REPORT_FILE, build_profile, profile_table

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def penguins_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, list]:
    out = tmp_path_factory.mktemp("profile") / "out"
    steps: list[tuple[float, str]] = []
    profile = build_profile(load_penguins(), out, on_step=lambda f, m: steps.append((f, m)))
    return profile, out, steps


def test_folder_holds_profile_json_plots_and_report(penguins_folder) -> None:
    profile, out, _ = penguins_folder
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["plots/correlation.png", "plots/distributions.png", "plots/missingness.png",
                     "plots/target.png", "profile.json", "report.html"]  # fmt: skip
    assert profile["artifacts"] == {
        "profile": "profile.json", "report": "report.html",
        "plots": {"distributions": "plots/distributions.png",
                  "correlation": "plots/correlation.png",
                  "missingness": "plots/missingness.png", "target": "plots/target.png"},
    }  # fmt: skip
    stored = json.loads((out / "profile.json").read_text())
    assert stored == json.loads(json.dumps(profile, allow_nan=False))
    assert stored["profile_version"] == 2
    for png in (out / "plots").iterdir():
        data = png.read_bytes()
        assert data.startswith(PNG_MAGIC) and 2_000 < len(data) < 400_000, png.name


def test_report_is_self_contained_html(penguins_folder) -> None:
    profile, out, _ = penguins_folder
    html = (out / REPORT_FILE).read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>") and html.rstrip().endswith("</html>")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing fetched
    assert "<link" not in html and "<script" not in html
    assert html.count("data:image/png;base64,") == len(profile["artifacts"]["plots"])
    for text in ("species", "bill_length_mm", "multiclass", "Recommendations",
                 "Go missing together", "Isolation forest", "Cramér"):  # fmt: skip
        assert text in html, text


def test_report_escapes_column_names(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"<script>alert(1)</script>": rng.normal(size=60),
                       "target": rng.choice(["<b>a</b>", "b"], 60)})  # fmt: skip
    build_profile(df, tmp_path)
    html = (tmp_path / REPORT_FILE).read_text(encoding="utf-8")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;a&lt;/b&gt;" in html


def test_steps_are_reported_in_order_and_can_stop_the_work(penguins_folder, tmp_path) -> None:
    _, _, steps = penguins_folder
    fractions = [f for f, _ in steps]
    assert fractions == sorted(fractions) and 0 < fractions[0] and fractions[-1] >= 0.9
    messages = [m for _, m in steps]
    for expected in ("relating columns", "checking for leakage", "drawing plots",
                     "writing the HTML report"):  # fmt: skip
        assert expected in messages

    class Stop(Exception):
        pass

    def stop_at_leakage(fraction: float, message: str) -> None:
        if message == "checking for leakage":
            raise Stop(message)

    with pytest.raises(Stop):
        build_profile(load_penguins(), tmp_path / "stopped", on_step=stop_at_leakage)
    assert not (tmp_path / "stopped" / "profile.json").exists()


def test_time_series_and_regression_plots(tmp_path: Path) -> None:
    n = 400
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"ts": pd.date_range("2024-01-01", periods=n, freq="h"),
                       "load": np.sin(np.arange(n) / 12) + rng.normal(0, 0.1, n)})  # fmt: skip
    profile = build_profile(df, tmp_path)
    assert profile["task"]["kind"] == "time_series_forecasting"
    assert set(profile["artifacts"]["plots"]) == {"distributions", "target"}  # nothing missing
    html = (tmp_path / REPORT_FILE).read_text(encoding="utf-8")
    assert "Time column" in html and "time_series_forecasting" in html


def test_wide_table_is_profiled_in_bounded_time(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    n_rows, n_cols = 40, 3_000
    df = pd.DataFrame(rng.normal(size=(n_rows, n_cols)), columns=[f"c{i}" for i in range(n_cols)])
    df["label"] = rng.choice(["a", "b"], n_rows)
    started = time.perf_counter()
    profile = build_profile(df, tmp_path)
    assert time.perf_counter() - started < 20
    assert profile["n_columns"] == n_cols + 1
    assert len(profile["relations"]["columns_considered"]) == 60
    assert len(profile["warnings"]) < 50
    html = (tmp_path / REPORT_FILE).read_text(encoding="utf-8")
    assert "2501 more are in profile.json" in html
    assert (tmp_path / "report.html").stat().st_size < 3_000_000


def test_profile_json_is_strict_json_with_odd_values() -> None:
    df = pd.DataFrame({
        "inf": [np.inf, -np.inf, 1.0, 2.0] * 25,
        "all_nan": [np.nan] * 100,
        "mixed": [1, "a", 2.5, None] * 25,
        "target": ["x", "y"] * 50,
    })  # fmt: skip
    profile = profile_table(df)
    assert json.loads(json.dumps(profile, allow_nan=False)) == profile


def test_report_shows_outliers_leakage_and_recommendations(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n = 500
    y = rng.choice(["won", "lost"], n)
    df = pd.DataFrame({"amount": rng.normal(size=n), "status_code": np.where(y == "won", "W", "L"),
                       "target": y})  # fmt: skip
    df.loc[[3, 7], "amount"] = [40.0, -35.0]
    build_profile(df, tmp_path)
    html = (tmp_path / REPORT_FILE).read_text(encoding="utf-8")
    quality = html[html.index('id="quality"'):]
    assert "<td>amount</td>" in quality  # the outlier table row
    assert "&#39;status_code&#39; alone predicts the target" in quality
    recommendations = html[html.index('id="recommendations"'):html.index('id="target"')]
    assert "status_code" in recommendations and "automatic" in recommendations
