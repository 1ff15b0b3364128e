"""The white paper: LaTeX from Jinja2 templates, a BibTeX bibliography, compiled to PDF.

Templates use LaTeX-friendly delimiters (``<< value >>``, ``<% block %>``) and every value
coming from the data goes through ``tex_escape`` (the ``tex`` filter), so column names such
as ``a_b & c%`` cannot break the document. Compilation uses ``latexmk`` when installed,
else ``pdflatex`` + ``bibtex`` + ``pdflatex`` twice; both come from Debian's TeX Live
packages installed by ``scripts/install_system_deps.sh``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2

from mlmesh_docs.reports import TEMPLATES_DIR, fmt_int, fmt_metric, fmt_num, fmt_params, fmt_pct

WHITE_PAPER_TEX = "white_paper.tex"
WHITE_PAPER_PDF = "white_paper.pdf"
WHITE_PAPER_BIB = "references.bib"
INSTALL_HINT = "scripts/install_system_deps.sh"
COMPILE_TIMEOUT_S = 120

_TEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    "\u2014": "---",
    "\u2013": "--",
    "\u00b1": r"$\pm$",
    "\u2026": r"\ldots{}",
}


class LatexCompilerMissingError(ValueError):
    """Neither latexmk nor pdflatex+bibtex is installed, so the PDF cannot be built."""


class LatexCompileError(ValueError):
    """pdflatex failed on the generated source; the message carries the log's error lines."""


def tex_escape(value: Any) -> str:
    """Escape a value for LaTeX text mode (every special character, and non-ASCII dropped
    to ``?`` when the T1/UTF-8 setup cannot typeset it)."""
    text = "" if value is None else str(value)
    out = []
    for char in text:
        if char in _TEX_SPECIALS:
            out.append(_TEX_SPECIALS[char])
        elif ord(char) < 32:
            out.append(" ")
        elif ord(char) > 255:
            out.append("?")
        else:
            out.append(char)
    return "".join(out)


def _tex_fmt(formatter: Any) -> Any:
    return lambda value, *args: tex_escape(formatter(value, *args))


def environment() -> jinja2.Environment:
    """The Jinja2 environment of the LaTeX templates (LaTeX-safe delimiters and filters)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        block_start_string="<%",
        block_end_string="%>",
        variable_start_string="<<",
        variable_end_string=">>",
        comment_start_string="<#",
        comment_end_string="#>",
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        tex=tex_escape,
        integer=_tex_fmt(fmt_int),
        num=_tex_fmt(fmt_num),
        metric=_tex_fmt(fmt_metric),
        pct=_tex_fmt(fmt_pct),
        params=_tex_fmt(fmt_params),
    )
    return env


def render_white_paper(view: Mapping[str, Any], narrative: Mapping[str, str],
                       out_dir: Path) -> Path:
    """Write ``white_paper.tex`` and ``references.bib`` into ``out_dir``; returns the .tex."""
    env = environment()
    tex = env.get_template("white_paper.tex.j2").render(**view, narrative=narrative)
    (out_dir / WHITE_PAPER_BIB).write_text(
        (TEMPLATES_DIR / WHITE_PAPER_BIB).read_text(encoding="utf-8"), encoding="utf-8")
    path = out_dir / WHITE_PAPER_TEX
    path.write_text(tex, encoding="utf-8")
    return path


def find_compiler() -> str:
    """``latexmk`` or ``pdflatex`` (with bibtex), whichever is installed; raises
    LatexCompilerMissingError naming the install script when neither is."""
    if shutil.which("latexmk") and shutil.which("pdflatex"):
        return "latexmk"
    if shutil.which("pdflatex") and shutil.which("bibtex"):
        return "pdflatex"
    raise LatexCompilerMissingError(
        "cannot compile the white paper: no LaTeX compiler found (need latexmk, or pdflatex "
        f"and bibtex, on PATH); run {INSTALL_HINT} (or `make install`) to install Debian's "
        "TeX Live packages"
    )


def compile_pdf(tex_path: Path) -> Path:
    """Compile ``tex_path`` (with its bibliography) to PDF next to it; returns the PDF.

    Build by-products (.aux, .log, .bbl, ...) are removed afterwards, except the .log
    when compilation fails (its error lines are in the exception message).
    """
    compiler = find_compiler()
    folder, stem = tex_path.parent, tex_path.stem
    env = {**os.environ, "max_print_line": "1000", "TEXMFOUTPUT": str(folder)}
    pdflatex = ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "-file-line-error"]
    if compiler == "latexmk":
        commands = [["latexmk", "-pdf", "-quiet", "-interaction=nonstopmode", "-halt-on-error",
                     "-file-line-error", tex_path.name]]
    else:
        commands = [[*pdflatex, tex_path.name], ["bibtex", stem],
                    [*pdflatex, tex_path.name], [*pdflatex, tex_path.name]]
    for command in commands:
        result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True,
                                timeout=COMPILE_TIMEOUT_S, check=False)
        if result.returncode != 0:
            raise LatexCompileError(
                f"{command[0]} failed on {tex_path.name} (exit {result.returncode}): "
                f"{_log_errors(folder / f'{stem}.log', result.stdout)}"
            )
    pdf = folder / f"{stem}.pdf"
    if not pdf.is_file() or pdf.stat().st_size == 0:
        raise LatexCompileError(f"{compiler} exited cleanly but wrote no {pdf.name}")
    for suffix in (".aux", ".log", ".bbl", ".blg", ".out", ".fls", ".fdb_latexmk", ".toc"):
        (folder / f"{stem}{suffix}").unlink(missing_ok=True)
    return pdf


def _log_errors(log_path: Path, stdout: str) -> str:
    text = log_path.read_text(errors="replace") if log_path.is_file() else stdout
    lines = [line for line in text.splitlines() if line.startswith("!") or ":error" in line
             or ".tex:" in line]
    return " | ".join(lines[:8]) or text[-800:]
