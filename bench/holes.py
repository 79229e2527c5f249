"""Holes for the quality benchmark, cut from real code already on this machine.

A *hole* is a document with one piece of code removed and the cursor where it was:

* ``line`` – one whole statement line removed; its indentation stays and the cursor sits
  after it (as when a user has just pressed Enter and wants the next line);
* ``block`` – a function's body removed (a Python docstring stays); the cursor sits at the
  body's indentation on the now-empty first body line.

Sources are code nobody on this project wrote: the Python standard library, JavaScript in
the globally installed npm packages, TypeScript sources found in any ``node_modules`` under
the searched roots, and C ``static inline`` functions in ``/usr/include``. Selection is
deterministic for a given seed and set of files: files are sorted, shuffled with
``random.Random(seed)``, and each file gives at most one hole per shape, picked with the
same generator. Only files that parse without any ERROR/MISSING node are used, so "the
file still parses" is a fair question to ask of a completion.
"""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tree_sitter import Node

from lsp_server.repo.parsing import count_errors, parse

__all__ = ["LANGUAGES", "Hole", "block_holes", "collect_holes", "find_sources", "line_holes"]


@dataclass(frozen=True, slots=True)
class Hole:
    """One benchmark case: the document with the gap, the cursor, and what was removed."""

    language: str
    shape: str
    """``"line"`` or ``"block"``."""
    path: str
    text: str
    """The document with the hole (what the editor holds)."""
    offset: int
    """Cursor offset (``str`` index) into ``text``."""
    expected: str
    """The removed code as it would be typed at the cursor."""

    @property
    def name(self) -> str:
        """A short label: file name and 1-based cursor line."""
        line = self.text.count("\n", 0, self.offset) + 1
        return f"{os.path.basename(self.path)}:{line}"


PY_ROOT = Path(sys.base_prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
"""The standard library of the Python running the benchmark (3.11.7 from pyenv here)."""
_SOURCE_ROOTS: dict[str, tuple[str, ...]] = {
    "python": (str(PY_ROOT),),
    "javascript": ("/usr/lib/node_modules", "/usr/local/lib/node_modules"),
    "typescript": ("/usr/lib/node_modules", "/usr/local/lib/node_modules", "/root/.cache"),
    "c": ("/usr/include",),
}
LANGUAGES: tuple[str, ...] = tuple(_SOURCE_ROOTS)
"""Languages the benchmark knows where to find code for."""

_SUFFIXES: dict[str, tuple[str, ...]] = {
    "python": (".py",),
    "javascript": (".js", ".mjs", ".cjs"),
    "typescript": (".ts", ".mts"),
    "c": (".h",),
}
_SKIP_DIRS = frozenset({"test", "tests", "__pycache__", "idlelib", "site-packages", "dist", ".git"})
_MIN_BYTES, _MAX_BYTES = 2_000, 200_000

_FUNCTIONS: dict[str, frozenset[str]] = {
    "python": frozenset({"function_definition"}),
    "javascript": frozenset({"function_declaration", "method_definition", "function_expression"}),
    "typescript": frozenset({"function_declaration", "method_definition", "function_expression"}),
    "c": frozenset({"function_definition"}),
}
_BODY_LINES = (2, 10)
"""Removed block bodies span this many lines (the model may write 128 tokens)."""
_BODY_CHARS = 500
_LINE_CHARS = (8, 100)


def _wanted(path: str, language: str) -> bool:
    name = os.path.basename(path)
    if not name.endswith(_SUFFIXES[language]) or name.endswith((".d.ts", ".d.mts", ".min.js")):
        return False
    return not (language == "typescript" and ".test." in name)


def find_sources(language: str) -> list[str]:
    """Sorted candidate source files of ``language`` on this machine (may be empty)."""
    found: set[str] = set()
    for root in _SOURCE_ROOTS[language]:
        if language == "python":
            # The standard library's own top level: no vendored or test code.
            found.update(str(p) for p in Path(root).glob("*.py") if p.is_file())
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
            if (
                language == "typescript"
                and "node_modules" not in dirpath
                and "lib" not in dirpath
                and dirpath.count(os.sep) > 6
            ):
                continue  # deep folders of caches that hold no packages
            for name in filenames:
                path = os.path.join(dirpath, name)
                if _wanted(path, language):
                    found.add(path)
    keep: list[str] = []
    for path in sorted(found):
        try:
            size = os.path.getsize(path)
        except OSError:
            continue
        if _MIN_BYTES <= size <= _MAX_BYTES:
            keep.append(path)
    return keep


def _read(path: str) -> str | None:
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "\r" in text:
        return None  # line-ending handling has its own unit tests
    return text


def _line_starts(text: str) -> list[int]:
    starts = [0]
    starts.extend(i + 1 for i, ch in enumerate(text) if ch == "\n")
    return starts


def _walk(node: Node) -> Iterator[Node]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))


def _inside_function(node: Node, language: str) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.type in _FUNCTIONS[language]:
            return True
        parent = parent.parent
    return False


def line_holes(path: str, text: str, language: str) -> list[Hole]:
    """Every single-line hole of a file: one-line statements inside function bodies."""
    tree = parse(text, language)
    if tree is None or count_errors(tree.root_node):
        return []
    data = text.encode("utf-8")
    starts = _line_starts(text)
    lines = text.split("\n")
    holes: list[Hole] = []
    seen: set[int] = set()
    for node in _walk(tree.root_node):
        if not node.is_named or node.type == "comment" or node.parent is None:
            continue
        parent_type = node.parent.type
        if not any(k in parent_type for k in ("block", "body", "compound_statement")):
            continue
        row = node.start_point.row
        if row in seen or node.end_point.row != row or not _inside_function(node, language):
            continue
        line = lines[row]
        body = line.strip()
        indent = line[: len(line) - len(line.lstrip())]
        if len(indent.encode("utf-8")) != node.start_point.column:
            continue
        if data[node.end_byte : node.end_byte + 1] not in (b"\n", b""):
            continue  # something follows on the line (a comment, a second statement)
        if not (_LINE_CHARS[0] <= len(body) <= _LINE_CHARS[1]) or body[0] in "\"'}#/*)]":
            continue
        seen.add(row)
        start = starts[row] + len(indent)
        end = starts[row] + len(line)
        holes.append(Hole(language, "line", path, text[:start] + text[end:], start, body))
    return holes


def _is_docstring(node: Node) -> bool:
    if node.type == "string":
        return True
    return (
        node.type == "expression_statement"
        and node.named_child_count == 1
        and (node.named_children[0].type == "string")
    )


def block_holes(path: str, text: str, language: str) -> list[Hole]:
    """Every block hole of a file: function bodies of a few lines, removed whole."""
    tree = parse(text, language)
    if tree is None or count_errors(tree.root_node):
        return []
    starts = _line_starts(text)
    lines = text.split("\n")
    holes: list[Hole] = []
    for node in _walk(tree.root_node):
        if node.type not in _FUNCTIONS[language]:
            continue
        body = node.child_by_field_name("body")
        if body is None:
            continue
        statements = [c for c in body.named_children if c.type != "comment"]
        if language == "python" and statements and _is_docstring(statements[0]):
            statements = statements[1:]
        if not statements:
            continue
        first, last = statements[0], statements[-1]
        first_row, last_row = first.start_point.row, last.end_point.row
        if first_row <= node.start_point.row or (
            language != "python" and first_row == body.start_point.row
        ):
            continue  # the body must start on its own line
        if language != "python" and last_row >= body.end_point.row:
            continue  # the closing brace must sit on a line of its own
        n_lines = last_row - first_row + 1
        if not (_BODY_LINES[0] <= n_lines <= _BODY_LINES[1]):
            continue
        line = lines[first_row]
        indent = line[: len(line) - len(line.lstrip())]
        if len(indent.encode("utf-8")) != first.start_point.column:
            continue
        start = starts[first_row] + len(indent)
        end = starts[last_row] + len(lines[last_row])
        expected = text[start:end].rstrip()
        if len(expected) > _BODY_CHARS:
            continue
        holes.append(Hole(language, "block", path, text[:start] + text[end:], start, expected))
    return holes


def collect_holes(language: str, shape: str, limit: int, seed: int = 0) -> list[Hole]:
    """Up to ``limit`` holes of one language and shape, at most one per file, seeded."""
    rng = random.Random(f"{seed}:{language}:{shape}")
    files = find_sources(language)
    rng.shuffle(files)
    cut = line_holes if shape == "line" else block_holes
    chosen: list[Hole] = []
    for path in files:
        if len(chosen) >= limit:
            break
        text = _read(path)
        if text is None or text.count("\n") > 6000:
            continue
        if language == "c" and "inline" not in text:
            continue  # only C headers with function bodies have holes
        candidates = cut(path, text, language)
        if candidates:
            chosen.append(candidates[rng.randrange(len(candidates))])
    return chosen
