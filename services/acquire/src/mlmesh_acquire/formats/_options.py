"""``source_options`` (a string-to-string map from the experiment spec) parsed and checked."""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from dataclasses import dataclass

from mlmesh_acquire.formats._errors import SourceOptionError

_DELIMITER_NAMES = {
    "tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|", "space": " ",
}
_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}

#: The option keys the table readers use; other keys (``hf_config``, ...) belong to the
#: sources and are ignored here.
OPTION_KEYS = (
    "format", "member", "sheet", "delimiter", "quotechar", "encoding", "decimal", "header",
    "key", "record_path",
)


@dataclass(frozen=True)
class ReadOptions:
    """How to read a table; ``None`` everywhere means "detect it"."""

    format: str | None = None
    member: str | None = None
    sheet: str | None = None
    delimiter: str | None = None
    #: ``""`` turns quoting off.
    quotechar: str | None = None
    encoding: str | None = None
    decimal: str | None = None
    header: bool | None = None
    key: str | None = None
    record_path: str | None = None

    @classmethod
    def parse(cls, options: Mapping[str, str] | None) -> ReadOptions:
        """Check and normalise the reader options in ``options``; other keys are ignored."""
        raw = {k.strip().lower(): str(v) for k, v in (options or {}).items()}

        def get(name: str) -> str | None:
            value = raw.get(name)
            return None if value is None or value.strip() == "" and name != "quotechar" else value

        delimiter = get("delimiter")
        if delimiter is not None:
            delimiter = _DELIMITER_NAMES.get(delimiter.strip().lower(), delimiter)
            if len(delimiter) != 1 or delimiter in "\r\n\"":
                raise SourceOptionError(
                    f"source option delimiter={raw['delimiter']!r} must be one character "
                    "(or tab, comma, semicolon, pipe, space)"
                )
        quotechar = raw.get("quotechar")
        if quotechar is not None:
            quotechar = "" if quotechar.strip().lower() in ("", "none", "off") else quotechar
            if len(quotechar) > 1 or quotechar in ("\r", "\n"):
                raise SourceOptionError(
                    f"source option quotechar={quotechar!r} must be one character, or 'none' "
                    "to turn quoting off"
                )
        encoding = get("encoding")
        if encoding is not None:
            try:
                encoding = codecs.lookup(encoding.strip()).name
            except LookupError as exc:
                raise SourceOptionError(
                    f"source option encoding={encoding!r} is not an encoding Python knows; "
                    "use e.g. utf-8, latin-1, cp1252 or utf-16"
                ) from exc
        decimal = get("decimal")
        if decimal is not None:
            decimal = {"comma": ",", "dot": ".", "point": "."}.get(decimal.strip().lower(),
                                                                 decimal.strip())
            if decimal not in (".", ","):
                raise SourceOptionError(
                    f"source option decimal={decimal!r} must be '.' or ','"
                )
        header_text = get("header")
        header: bool | None = None
        if header_text is not None:
            word = header_text.strip().lower()
            if word in _TRUE:
                header = True
            elif word in _FALSE:
                header = False
            elif word != "auto":
                raise SourceOptionError(
                    f"source option header={header_text!r} must be true, false or auto"
                )
        fmt = get("format")
        if fmt is not None:
            from mlmesh_acquire.formats._registry import canonical_format_name

            fmt = canonical_format_name(fmt)
        member = get("member")
        if member is not None:
            member = member.strip().replace("\\", "/")
            while member.startswith("./"):
                member = member[2:]
            member = member.strip("/") or None
        return cls(
            format=fmt,
            member=member,
            sheet=get("sheet"),
            delimiter=delimiter,
            quotechar=quotechar,
            encoding=encoding,
            decimal=decimal,
            header=header,
            key=get("key"),
            record_path=get("record_path"),
        )
