"""The bundled demo dataset and a check that the generated serving app answers."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import httpx
import pandas as pd

from mlmesh_common.broker import free_port, wait_for_port


def penguins_csv(folder: Path) -> Path:
    """palmerpenguins' CSV (shipped in the package) copied into `folder`."""
    from palmerpenguins import load_penguins

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "penguins.csv"
    if not path.exists():
        load_penguins().to_csv(path, index=False)
    return path


def start_serving_app(app_dir: Path, env: dict[str, str] | None = None,
                      ) -> tuple[subprocess.Popen, str]:
    """Start a generated serving app with uvicorn; returns the process and its base URL."""
    port = free_port()
    output = tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "app:app", "--host", "127.0.0.1",
                             "--port", str(port)], cwd=app_dir,
                            env={**os.environ, **(env or {})}, stdout=output,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port("127.0.0.1", port, 60)
    except TimeoutError as exc:
        proc.kill()
        proc.wait()
        output.seek(0)
        tail = output.read().decode(errors="replace")[-3000:]
        raise RuntimeError(f"the serving app in {app_dir} did not start:\n{tail}") from exc
    return proc, f"http://127.0.0.1:{port}"


def local_path(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme not in ("", "file"):
        raise ValueError(f"the demo serves only local artifacts, not {uri}")
    return Path(unquote(parsed.path))


def query_serving_app(serving_uri: str, dataset: Path, home: Path) -> str:
    """Start the serving app, send it a few rows, and stop it."""
    proc, url = start_serving_app(local_path(serving_uri))
    try:
        rows = pd.read_csv(dataset).drop(columns=["species"]).head(3)
        payload = {"rows": rows.astype(object).where(rows.notna(), None).to_dict("records")}
        for _ in range(20):
            try:
                answer = httpx.post(f"{url}/predict/batch", json=payload, timeout=10)
                break
            except httpx.TransportError:
                time.sleep(0.5)
        answer.raise_for_status()
        return str(answer.json().get("predictions"))
    finally:
        proc.terminate()
        proc.wait(10)
