"""LaTeX escaping, compilation and the missing-compiler error of the white paper."""

from __future__ import annotations

import shutil

import pytest

from mlmesh_docs import whitepaper
from mlmesh_docs.whitepaper import (
    INSTALL_HINT,
    LatexCompileError,
    LatexCompilerMissingError,
    compile_pdf,
    environment,
    find_compiler,
    tex_escape,
)


def test_latex_compiler_is_installed():
    """The white paper needs TeX Live: this fails (never skips) when it is missing."""
    assert find_compiler() in ("latexmk", "pdflatex"), (
        f"no LaTeX compiler on PATH; run {INSTALL_HINT}")
    assert shutil.which("bibtex"), f"bibtex missing; run {INSTALL_HINT}"


def test_tex_escape_neutralises_every_special_character():
    assert tex_escape("a_b & c% $5 #1 {x} ~y ^z \\w <t>|") == (
        r"a\_b \& c\% \$5 \#1 \{x\} \textasciitilde{}y \textasciicircum{}z "
        r"\textbackslash{}w \textless{}t\textgreater{}\textbar{}")
    assert tex_escape(None) == ""
    assert tex_escape("caf\u00e9 \u2014 \u4e2d") == "caf\u00e9 --- ?"


def test_hostile_values_compile(tmp_path):
    hostile = "col_1 & 50% of $x$ #\\end{document} {oops ~^"
    template = environment().from_string(
        "\\documentclass{article}\\usepackage[T1]{fontenc}\\usepackage[utf8]{inputenc}"
        "\\begin{document}<< value|tex >> << 0.123456|metric >>\\end{document}\n")
    tex = tmp_path / "hostile.tex"
    tex.write_text(template.render(value=hostile))
    pdf = compile_pdf(tex)
    assert pdf.read_bytes().startswith(b"%PDF-")
    assert not (tmp_path / "hostile.aux").exists()  # by-products cleaned up
    if shutil.which("pdftotext"):
        import subprocess

        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                              check=True).stdout
        assert "50% of $x$" in text and "0.1235" in text


def test_broken_source_raises_with_the_log_errors(tmp_path):
    tex = tmp_path / "broken.tex"
    tex.write_text("\\documentclass{article}\\begin{document}\\undefinedmacro\\end{document}\n")
    with pytest.raises(LatexCompileError, match="Undefined control sequence"):
        compile_pdf(tex)


def test_missing_compiler_is_reported_with_the_install_script(tmp_path, monkeypatch):
    monkeypatch.setattr(whitepaper.shutil, "which", lambda name: None)
    tex = tmp_path / "x.tex"
    tex.write_text("\\documentclass{article}\\begin{document}x\\end{document}\n")
    with pytest.raises(LatexCompilerMissingError, match="scripts/install_system_deps.sh"):
        compile_pdf(tex)
    assert issubclass(LatexCompilerMissingError, ValueError)  # permanent: DLQ + failed


def test_pdflatex_and_bibtex_fallback_without_latexmk(tmp_path, monkeypatch):
    real_which = shutil.which
    monkeypatch.setattr(whitepaper.shutil, "which",
                        lambda name: None if name == "latexmk" else real_which(name))
    assert find_compiler() == "pdflatex"
    (tmp_path / "refs.bib").write_text(
        "@book{k, title={T}, author={A, B}, publisher={P}, year={2000}}\n")
    tex = tmp_path / "cite.tex"
    tex.write_text("\\documentclass{article}\\begin{document}See \\cite{k}."
                   "\\bibliographystyle{plain}\\bibliography{refs}\\end{document}\n")
    pdf = compile_pdf(tex)
    assert pdf.stat().st_size > 0
    if shutil.which("pdftotext"):
        import subprocess

        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                              check=True).stdout
        assert "[1]" in text and "References" in text
