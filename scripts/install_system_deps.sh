#!/usr/bin/env bash
# Install the system packages mlmesh needs beyond Python: TeX Live (from Debian's
# packages) to compile the docs stage's white paper, poppler-utils to check the PDF, and
# chromium for the dashboard's browser tests.
# Idempotent: does nothing when latexmk, pdflatex, bibtex, pdftotext and chromium are on PATH.
# Runs as root directly, or through sudo when run by another user.
set -euo pipefail

PACKAGES=(
    texlive-latex-base          # pdflatex, bibtex, the LaTeX kernel, graphicx, amsmath
    texlive-latex-recommended   # booktabs, hyperref, geometry, natbib, caption, xcolor
    texlive-fonts-recommended   # Latin Modern / Times fonts for the PDF
    latexmk                     # drives pdflatex + bibtex until references settle
    poppler-utils               # pdftotext / pdfinfo, used by tests to read the PDF
    chromium                    # headless browser for the dashboard tests (Python playwright)
)

missing=()
for tool in latexmk pdflatex bibtex pdftotext chromium; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" -eq 0 ]; then
    echo "install_system_deps: latexmk, pdflatex, bibtex, pdftotext and chromium are present;" \
         "nothing to do"
    exit 0
fi
echo "install_system_deps: missing ${missing[*]}; installing ${PACKAGES[*]}"

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_system_deps: apt-get not found; install TeX Live (pdflatex, bibtex, latexmk)" \
         "and poppler-utils with your system's package manager" >&2
    exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "install_system_deps: not root and sudo is not available; run this script as root" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "install_system_deps: ${as_root[*]:-}apt-get update"
"${as_root[@]}" apt-get update -q
echo "install_system_deps: ${as_root[*]:-}apt-get install --no-install-recommends ${PACKAGES[*]}"
"${as_root[@]}" apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"
for tool in latexmk pdflatex bibtex pdftotext chromium; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "install_system_deps: $tool is still missing after the install" >&2
        exit 1
    }
done
echo "install_system_deps: done ($(pdflatex --version | head -n 1))"
