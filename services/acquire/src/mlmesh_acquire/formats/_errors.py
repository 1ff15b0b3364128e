"""Errors raised while reading a table: bad input that retrying cannot fix."""

from __future__ import annotations


class UnreadableTableError(ValueError):
    """The file is not a table we can read (empty, binary, malformed, no columns)."""


class SourceOptionError(ValueError):
    """A ``source_options`` value is invalid (unknown format, two-character delimiter, ...)."""
