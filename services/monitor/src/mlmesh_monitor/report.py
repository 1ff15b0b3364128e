"""The report artifact of a drifted window: evidently's HTML and JSON, written to files.

Rendering takes seconds of pure-Python work, so the monitor runs ``write_report`` in a
separate process (it holds the GIL for that long and would stall ingestion otherwise).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from mlmesh_monitor.drift import drift_report


def write_report(reference: pd.DataFrame, current: pd.DataFrame, columns: list[str],
                 drift_share_threshold: float, summary: dict[str, Any],
                 out_dir: str) -> tuple[str, str]:
    """Write ``report.html`` and ``report.json`` (the monitor's ``summary`` of every test
    plus evidently's report as a dict) into ``out_dir``; returns both paths."""
    html, as_dict, _ = drift_report(reference, current, columns=columns,
                                    drift_share_threshold=drift_share_threshold)
    folder = Path(out_dir)
    html_path, json_path = folder / "report.html", folder / "report.json"
    html_path.write_text(html, encoding="utf-8")
    json_path.write_text(json.dumps({"check": summary, "evidently": as_dict}, default=str),
                         encoding="utf-8")
    return str(html_path), str(json_path)
