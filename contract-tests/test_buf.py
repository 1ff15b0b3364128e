"""Proto contracts: buf lint, buf breaking against the released baseline, generated code current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUF = ROOT / "node_modules" / ".bin" / "buf"
BUF_SH = ROOT / "contract-tests" / "buf.sh"


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, check=False)


@pytest.fixture(scope="module")
def buf() -> Path:
    if not BUF.exists():
        pytest.fail("buf is not installed: run `npm ci --no-audit --no-fund` in the repo root "
                    "(package.json pins @bufbuild/buf), or `contract-tests/buf.sh lint` once",
                    pytrace=False)
    return BUF_SH


def test_buf_lint(buf: Path) -> None:
    result = _run(buf, "lint")
    assert result.returncode == 0, f"buf lint failed:\n{result.stdout}{result.stderr}"


def test_buf_breaking_against_baseline(buf: Path) -> None:
    assert (ROOT / "contract-tests" / "baseline.binpb").exists(), "baseline image missing"
    result = _run(buf, "breaking")
    assert result.returncode == 0, (
        "protos/ break the released v1 contract (contract-tests/baseline.binpb); inside v1 only "
        "additive changes are allowed, a breaking change needs a new major version:\n"
        f"{result.stdout}{result.stderr}")


def test_generated_proto_code_is_current() -> None:
    result = _run(sys.executable, ROOT / "scripts" / "gen_proto.py", "--check")
    assert result.returncode == 0, f"{result.stdout}{result.stderr}"
