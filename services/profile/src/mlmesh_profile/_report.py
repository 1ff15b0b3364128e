"""The self-contained HTML EDA report: one file, inline CSS, plots embedded as base64 PNG.

Written with Jinja2 rather than ydata-profiling: its latest release (4.18.4) requires
pandas<3, numpy<2.4, scipy<1.17, matplotlib<=3.10 and numba<0.63, so pip cannot install it
next to this repository's pandas 3.1 / numpy 2.4 / scipy 1.17 / matplotlib 3.11 without
downgrading them.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import jinja2

TEMPLATES_DIR = Path(__file__).parent / "templates"
#: Rows of the column table at most (wide tables keep the report readable and small).
MAX_REPORT_COLUMNS = 500


def render_report(profile: dict[str, Any], plots: dict[str, Path]) -> str:
    """The report's HTML for ``profile``; ``plots`` maps plot names to PNG files."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = _fmt
    env.filters["pct"] = _pct
    images = {
        name: "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()
        for name, path in plots.items()
    }
    columns = profile["columns"][:MAX_REPORT_COLUMNS]
    return env.get_template("report.html.j2").render(
        p=profile,
        columns=columns,
        outlier_rows=_outlier_rows(profile["outliers"]),
        columns_left_out=len(profile["columns"]) - len(columns),
        images=images,
        sample_note=_sample_note(profile["sampling"]),
    )


def write_report(profile: dict[str, Any], plots: dict[str, Path], path: Path) -> Path:
    """Write the report to ``path`` and return it."""
    path.write_text(render_report(profile, plots), encoding="utf-8")
    return path


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 1e6 or abs(value) < 1e-3:
            return f"{value:.{digits - 1}e}"
        if abs(value) >= 1:
            return f"{value:.{digits}g}"
        return f"{value:.{digits}f}".rstrip("0")
    return str(value)


def _outlier_rows(outliers: dict[str, Any]) -> list[dict[str, Any]]:
    """Columns with outliers by either rule, most IQR outliers first."""
    iqr, z = outliers["iqr"]["columns"], outliers["zscore"]["columns"]
    rows = [{"column": name, "iqr": o["count"], "iqr_share": o["share"],
             "z": z.get(name, {}).get("count"), "max_abs_z": z.get(name, {}).get("max_abs_z")}
            for name, o in iqr.items() if o["count"] or z.get(name, {}).get("count")]  # fmt: skip
    return sorted(rows, key=lambda r: -r["iqr"])


def _pct(value: Any) -> str:
    return "—" if value is None else f"{float(value):.1%}"


def _sample_note(sampling: dict[str, Any]) -> str:
    if not sampling["sampled"]:
        return f"all {sampling['n_rows']:,} rows were used for every part of the profile"
    return (
        f"{sampling['sample_rows']:,} of {sampling['n_rows']:,} rows (seed {sampling['seed']}) "
        f"for {', '.join(sampling['on_sample'])}; {', '.join(sampling['exact'])} are exact"
    )
