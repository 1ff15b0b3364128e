"""Helpers for text formats: reading a sample, guessing its encoding, spotting non-text."""

from __future__ import annotations

from pathlib import Path

from mlmesh_acquire.formats._errors import UnreadableTableError

#: Bytes looked at to pick the encoding, the delimiter, the header and the decimal mark.
SNIFF_BYTES = 256 * 1024

_BOMS = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def read_head(path: Path, n: int = SNIFF_BYTES) -> bytes:
    """The first ``n`` bytes of ``path``."""
    with open(path, "rb") as fh:
        return fh.read(n)


def detect_encoding(sample: bytes) -> str:
    """The encoding of a text sample.

    A byte-order mark decides first (UTF-8, UTF-16, UTF-32); then UTF-16 without a mark is
    recognised by its NUL bytes; then UTF-8 if the sample decodes; then Windows-1252 if it
    decodes (typical of Excel exports); Latin-1 last, which decodes anything.
    """
    for bom, name in _BOMS:
        if sample.startswith(bom):
            return name
    even, odd = sample[0:2000:2], sample[1:2000:2]
    if len(sample) >= 8:
        if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.05 * len(even):
            return "utf-16-le"
        if even.count(0) > 0.4 * len(even) and odd.count(0) < 0.05 * len(odd):
            return "utf-16-be"
    for cut in range(4):  # the sample may end inside a multi-byte character
        try:
            sample[: len(sample) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return "utf-8"
    try:
        sample.decode("cp1252")
    except UnicodeDecodeError:
        return "latin-1"
    return "cp1252"


def decode_sample(sample: bytes, encoding: str) -> str:
    """The sample as text (a cut final character replaced), without a byte-order mark."""
    return sample.decode(encoding, errors="replace").lstrip("\ufeff")


def looks_binary(sample: bytes) -> bool:
    """NUL bytes or many control characters mean the bytes are not delimited text."""
    if b"\x00" in sample:
        return True
    controls = sum(1 for b in sample[:65536] if b < 32 and b not in (9, 10, 12, 13))
    return controls > 0.01 * min(len(sample), 65536)


def check_text(path_label: str, sample: bytes, encoding: str, what: str) -> str:
    """Decode the sample, refusing blank, binary and HTML content with a clear reason."""
    if not sample.strip():
        raise UnreadableTableError(
            f"{path_label} holds no data (only blank space); give a {what} file with data"
        )
    if not encoding.startswith(("utf-16", "utf-32")) and looks_binary(sample):
        raise UnreadableTableError(
            f"{path_label} is binary, not {what} text; check that the source really is the "
            "table and not, say, an image or another binary format, or name the format with "
            "source option format="
        )
    text = decode_sample(sample, encoding)
    start = text.lstrip()[:200]
    if start.startswith("<") and ">" in start:
        raise UnreadableTableError(
            f"{path_label} is HTML or XML, not {what}; the URL probably returns a web page "
            "(a login or download page) instead of the file itself"
        )
    return text
