"""Usage examples: how other files use a name the current file imports but does not use."""

from __future__ import annotations

import re

from lsp_server.repo.context.base import RankOptions, RepoView, Snippet
from lsp_server.repo.context.cache import LockedLru
from lsp_server.repo.context.current import import_rows
from lsp_server.repo.context.similarity import similarity_files
from lsp_server.repo.context.snippets import stub_for
from lsp_server.repo.tags import close_header, opens_bracket

Example = tuple[str, int, int]
"""(name, first row, last row) of one usage example."""
_NOT_A_USE = re.compile(
    r"\s*(?:#|//|/?\*|from\s|import\s|export\s+(?:\{|\*|default\s+\w+\s*;?\s*$)"
    r"|module\.exports\b|exports\.\w+\s*=\s*\w+\s*;?\s*$|[A-Za-z_]\w*\s*=\s*None\b"
    r"|(?:const|let|var)\s[^=]*=\s*require\()"
)
"""Lines that mention a name without showing how it is used: comments, imports (and
``require``), exports (``module.exports = X`` at the end of a sibling is copied, not
learnt from), ``Name = None`` fallbacks."""
_DEFINES = re.compile(r"\s*(?:async\s+)?(?:def|class|function|interface|type)\s+(\w+)")
"""A line that defines a name (a definition of the imported name itself is no use)."""
_DECLARES = re.compile(r"\s*(?:export\s+)?(?:const|let|var)\s+(\w+)\s*[=:;]")
"""A JavaScript / TypeScript variable declaration (``const webidl = {}``): a definition too."""
_DEFINES_MEMBER = re.compile(
    r"\s*(\w+)(?:\.\w+)+\s*=\s*(?:async\s+)?(?:function\b|\([^)]*\)\s*=>|\w+\s*=>)"
)
"""``webidl.check = function (…)``: a member defined, not the name used."""
_GOES_ON = ("(", "[", "{", ",", "\\")
"""Line endings after which a statement goes on on the next line."""


class UsageExamples:
    """Finds usage examples; remembers each file's by its version and the names asked."""

    def __init__(self, options: RankOptions) -> None:
        """An empty memo for examples cut with ``options``."""
        self._options = options
        self._found: LockedLru[
            tuple[str, tuple[int, int, int], tuple[str, ...]], tuple[Example, ...]
        ] = LockedLru(1024)

    def clear(self) -> None:
        """Forget every example found."""
        self._found.clear()

    def examples(
        self, index: RepoView, current: str, names: tuple[str, ...], imported: list[str]
    ) -> list[Snippet]:
        """How other files use the names the current file imports but does not use yet.

        A name imported and not used is the likeliest to be typed next, and a sibling file
        that uses it (``class JsonConverter(Converter):`` beside ``msgpack.py``;
        ``app: ASGIApp,`` in every middleware) shows the model the exact shape of that use,
        which a definition does not. Searched in the files the similarity search reads (the
        current folder, open documents, imported files), the current folder first.
        """
        opts = self._options
        if opts.max_examples <= 0:
            return []
        # Files the current one does not import first: the imported ones already show the
        # names in their definitions.
        searched = similarity_files(index, current, imported, opts)
        files = sorted(searched, key=lambda f: f[0] in imported)  # stable: order kept otherwise
        out: list[Snippet] = []
        per_name: dict[str, int] = {}
        for display, lines in files:
            for name, start, end in self._file_examples(index, display, lines, names):
                if per_name.get(name, 0) >= opts.examples_per_name:
                    continue
                per_name[name] = per_name.get(name, 0) + 1
                text = "\n".join(lines[start : end + 1])
                stub = stub_for(display)
                if stub and _DEFINES.match(lines[start]):
                    text = close_header(text, stub)  # a class or def header: body left out
                # Below definitions (2.5-3), above whole files and outlines (<= 1).
                out.append(Snippet(display, start, end, text, 1, 2.0 - 0.1 * len(out)))
                if len(out) >= opts.max_examples:
                    return out
        return out

    def _file_examples(
        self, index: RepoView, display: str, lines: list[str], names: tuple[str, ...]
    ) -> tuple[Example, ...]:
        """``(name, first row, last row)`` of the first use of each of ``names`` in a file
        (cached by the file's version)."""
        version = index.file_version(display)
        if version is None:
            return find_examples(index, display, lines, names, self._options)
        return self._found.get_or_compute(
            (display, version, names),
            lambda: find_examples(index, display, lines, names, self._options),
        )


def find_examples(
    index: RepoView, display: str, lines: list[str], names: tuple[str, ...], opts: RankOptions
) -> tuple[Example, ...]:
    """``(name, first row, last row)`` of the first use of each of ``names`` in a file."""
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b")
    # The file's own import statements, continuation lines included: a name listed in
    # ``from . import (`` … ``)`` is imported there, not used.
    info = index.entry_tags(display)
    imports = import_rows(lines, {ref.line for ref in info.imports}) if info else set()
    seen: set[str] = set()
    examples: list[Example] = []
    for row, line in enumerate(lines):
        match = pattern.search(line)
        if match is None or match.group(1) in seen or _NOT_A_USE.match(line):
            continue
        if row in imports:
            continue
        defines = _DEFINES.match(line) or _DECLARES.match(line) or _DEFINES_MEMBER.match(line)
        if defines is not None and defines.group(1) == match.group(1):
            continue  # another definition of the name, not a use
        if match.start() > 0 and line[match.start() - 1] == ".":
            continue  # ``x.name``: an attribute that shares the name
        head = line[: match.start()]
        if head.lstrip()[:1] in ("'", '"', "`") or any(head.count(q) % 2 for q in "'\"`"):
            continue  # in a string or a docstring
        # The whole statement: from where it starts above (``def f(`` over ``app: T,``)
        # to where its brackets close below.
        first = row
        while (
            first > 0
            and row - first < 3
            and first - 1 not in imports
            and lines[first - 1].rstrip().endswith(_GOES_ON)
        ):
            first -= 1
        end = row
        while opens_bracket("\n".join(lines[first : end + 1])) and end + 1 < len(lines):
            if end - first + 1 >= opts.example_lines:
                break
            end += 1
        if opens_bracket("\n".join(lines[first : end + 1])):
            continue  # too long to show whole; a later use may do
        if lines[end].rstrip().endswith(":") and not _DEFINES.match(lines[first]):
            # ``except EndOfStream:`` — show what the block does, not a stub body.
            indent = len(lines[first]) - len(lines[first].lstrip())
            while end + 1 < len(lines) and end - first + 1 < opts.example_lines:
                after = lines[end + 1]
                if after.strip() and len(after) - len(after.lstrip()) <= indent:
                    break
                end += 1
            while end > first and not lines[end].strip():
                end -= 1
        seen.add(match.group(1))
        examples.append((match.group(1), first, end))
        if len(seen) == len(names):
            break
    return tuple(examples)
