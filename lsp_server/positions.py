"""Conversions between LSP positions and offsets into a Python string.

LSP positions count lines split at ``\\n``, ``\\r\\n`` or ``\\r`` only (not the other
characters ``str.splitlines`` breaks on) and characters in the negotiated encoding's code
units: UTF-16 by default, UTF-8 or UTF-32 when negotiated. Positions past the end of a line
or of the document are clamped, never an error.
"""

from __future__ import annotations

import re
from bisect import bisect_right

_BREAK = re.compile(r"\r\n|\r|\n")

UTF8 = "utf-8"
UTF16 = "utf-16"
UTF32 = "utf-32"


def line_starts(text: str) -> list[int]:
    """Offsets at which each line of ``text`` starts (the first is always 0)."""
    return [0, *(m.end() for m in _BREAK.finditer(text))]


def _line_end(text: str, starts: list[int], line: int) -> int:
    """Offset of the end of ``line``'s content (before its line break)."""
    end = starts[line + 1] if line + 1 < len(starts) else len(text)
    while end > starts[line] and text[end - 1] in "\r\n":
        end -= 1
    return end


def _units(ch: str, encoding: str) -> int:
    cp = ord(ch)
    if encoding == UTF16:
        return 2 if cp > 0xFFFF else 1
    if encoding == UTF8:
        return 1 if cp < 0x80 else 2 if cp < 0x800 else 3 if cp < 0x10000 else 4
    return 1


def offset_at(
    text: str, line: int, character: int, encoding: str = UTF16, starts: list[int] | None = None
) -> int:
    """Offset into ``text`` of an LSP position, clamped to the line and the document."""
    starts = starts if starts is not None else line_starts(text)
    if line < 0:
        return 0
    if line >= len(starts):
        return len(text)
    start = starts[line]
    end = _line_end(text, starts, line)
    if character <= 0:
        return start
    if encoding == UTF32:
        return min(start + character, end)
    units = 0
    for i in range(start, end):
        units += _units(text[i], encoding)
        if units > character:  # inside a surrogate pair / multi-byte char: stay before it
            return i
        if units == character:
            return i + 1
    return end


def position_at(
    text: str, offset: int, encoding: str = UTF16, starts: list[int] | None = None
) -> tuple[int, int]:
    """LSP (line, character) of an offset into ``text``."""
    starts = starts if starts is not None else line_starts(text)
    offset = max(0, min(offset, len(text)))
    line = bisect_right(starts, offset) - 1
    # An offset between \r and \n belongs to the end of the line.
    segment = text[starts[line] : offset]
    if encoding == UTF32:
        return line, len(segment)
    return line, sum(_units(ch, encoding) for ch in segment)


def normalize_encoding(kind: str | None) -> str:
    """Map an LSP PositionEncodingKind value to one of UTF8 / UTF16 / UTF32."""
    if kind in (UTF8, UTF32):
        return kind
    return UTF16
