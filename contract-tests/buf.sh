#!/usr/bin/env bash
# Run the pinned buf (npm @bufbuild/buf, see package.json) from the repo root with the
# contract-tests configuration. Installs node_modules with `npm ci` when it is missing.
#   contract-tests/buf.sh lint                      # lint protos/
#   contract-tests/buf.sh breaking                  # protos/ vs contract-tests/baseline.binpb
#   contract-tests/buf.sh baseline                  # rewrite the baseline (on a release only)
#   contract-tests/buf.sh <any buf command> ...     # passed through
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUF="$ROOT/node_modules/.bin/buf"
if [[ ! -x "$BUF" ]]; then
  echo "buf.sh: node_modules missing, running npm ci" >&2
  npm ci --no-audit --no-fund >&2
fi
CONFIG=(--config contract-tests/buf.yaml)
case "${1:-}" in
  lint)
    shift; exec "$BUF" lint protos "${CONFIG[@]}" "$@" ;;
  breaking)
    shift; exec "$BUF" breaking protos --against contract-tests/baseline.binpb "${CONFIG[@]}" "$@" ;;
  baseline)
    shift; exec "$BUF" build protos "${CONFIG[@]}" -o contract-tests/baseline.binpb "$@" ;;
  "")
    exec "$BUF" --help ;;
  *)
    exec "$BUF" "$@" ;;
esac
