"""Generate the Python code for protos/ into libs/common/src (run by `make proto`).

With --check it generates into a temporary folder and exits non-zero when the
committed code differs, so CI notices a .proto edited without regenerating.
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[1]
PROTOS = ROOT / "protos"
OUT = ROOT / "libs" / "common" / "src"
GRPC_PACKAGES = ("mlmesh/gateway/",)


def generate(out: Path) -> list[Path]:
    """Generate messages (+ .pyi) for every proto and gRPC stubs for services."""
    sources = sorted(p.relative_to(PROTOS).as_posix() for p in PROTOS.rglob("*.proto"))
    include = str(Path(protoc.__file__).parent / "_proto")
    args = ["protoc", f"-I{PROTOS}", f"-I{include}", f"--python_out={out}", f"--pyi_out={out}"]
    if rc := protoc.main([*args, *sources]):
        raise SystemExit(f"protoc failed ({rc}) on messages")
    grpc_sources = [s for s in sources if s.startswith(GRPC_PACKAGES)]
    if rc := protoc.main(["protoc", f"-I{PROTOS}", f"-I{include}", f"--grpc_python_out={out}",
                          *grpc_sources]):
        raise SystemExit(f"protoc failed ({rc}) on services")
    for path in [out / "mlmesh", *(out / "mlmesh").rglob("*")]:
        if path.is_dir() and path.name != "__pycache__":
            (path / "__init__.py").touch()
    return _python_files(out)


def _python_files(out: Path) -> list[Path]:
    return sorted(p.relative_to(out) for p in (out / "mlmesh").rglob("*.py*")
                  if "__pycache__" not in p.parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if generated code is stale")
    args = parser.parse_args()
    if not args.check:
        generate(OUT)
        print(f"generated into {OUT / 'mlmesh'}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        stale = [p for p in fresh if not (OUT / p).exists()
                 or not filecmp.cmp(Path(tmp) / p, OUT / p, shallow=False)]
        committed = set(_python_files(OUT))
        extra = sorted(committed - set(fresh))
    if stale or extra:
        print("generated protobuf code is stale; run `make proto`:", file=sys.stderr)
        for p in stale + extra:
            print(f"  {p}", file=sys.stderr)
        return 1
    print("generated protobuf code is current")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
