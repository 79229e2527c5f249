"""Holes for the quality benchmark, cut from real code already on this machine.

A *hole* is a document with one piece of code removed and the cursor where it was:

* ``line`` – one whole statement line removed; its indentation stays and the cursor sits
  after it (as when a user has just pressed Enter and wants the next line);
* ``line0`` – any one line inside a function removed together with its indentation; the
  cursor sits at column 0 of the now-empty line (an editor without auto-indent, ``o`` in
  some Vim set-ups, a fresh line after a paste). Unlike ``line`` it includes the lines
  that end or split a block — ``}``, ``} else {``, ``else:``, ``break;`` — and the first
  or a middle line of a statement that spans several lines (``runner = Runner(``);
* ``block`` – a function's body removed (a Python docstring stays); the cursor sits at the
  body's indentation on the now-empty first body line.

Two corpora (``corpus``):

* ``familiar`` – code nobody on this project wrote but every code model has seen in
  training: the Python standard library, JavaScript in the globally installed npm
  packages, TypeScript sources found in any ``node_modules`` under the searched roots, C
  ``static inline`` functions in ``/usr/include``, the JDK's own Java sources (``src.zip``)
  and Go's standard library (Debian's ``golang-1.19-src``, unpacked into the cache);
* ``fresh`` – packages first released in 2025-2026, after the models' training cut-off
  (:mod:`bench.fresh` pins and fetches them).

Selection is
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

from lsp_server.syntax import count_errors, parse

__all__ = [
    "CORPORA",
    "LANGUAGES",
    "SHAPES",
    "Hole",
    "block_holes",
    "collect_holes",
    "find_sources",
    "line0_holes",
    "line_holes",
]


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
DEV_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "coder-lsp-dev"
"""Where unpacked benchmark sources live (outside the repository)."""
JAVA_SRC = DEV_CACHE / "jdk-src"
GO_SRC = DEV_CACHE / "go-src"
_SOURCE_ROOTS: dict[str, tuple[str, ...]] = {
    "python": (str(PY_ROOT),),
    "javascript": ("/usr/lib/node_modules", "/usr/local/lib/node_modules"),
    "typescript": ("/usr/lib/node_modules", "/usr/local/lib/node_modules", "/root/.cache"),
    "c": ("/usr/include",),
    "java": (str(JAVA_SRC),),
    "go": (str(GO_SRC),),
}
LANGUAGES: tuple[str, ...] = tuple(_SOURCE_ROOTS)
"""Languages the benchmark knows where to find code for."""
SHAPES: tuple[str, ...] = ("line", "line0", "block")
CORPORA: tuple[str, ...] = ("familiar", "fresh")

_SUFFIXES: dict[str, tuple[str, ...]] = {
    "python": (".py",),
    "javascript": (".js", ".mjs", ".cjs"),
    "typescript": (".ts", ".mts"),
    "c": (".h",),
    "java": (".java",),
    "go": (".go",),
}
_SKIP_DIRS = frozenset({"test", "tests", "__pycache__", "idlelib", "site-packages", "dist", ".git"})
_MIN_BYTES, _MAX_BYTES = 2_000, 200_000

_FUNCTIONS: dict[str, frozenset[str]] = {
    "python": frozenset({"function_definition"}),
    "javascript": frozenset({"function_declaration", "method_definition", "function_expression"}),
    "typescript": frozenset({"function_declaration", "method_definition", "function_expression"}),
    "c": frozenset({"function_definition"}),
    "java": frozenset({"method_declaration", "constructor_declaration"}),
    "go": frozenset({"function_declaration", "method_declaration", "func_literal"}),
}
_BODY_LINES = (2, 10)
"""Removed block bodies span this many lines (the model may write 128 tokens)."""
_BODY_CHARS = 500
_LINE_CHARS = (8, 100)


def _wanted(path: str, language: str) -> bool:
    name = os.path.basename(path)
    if not name.endswith(_SUFFIXES[language]) or name.endswith((".d.ts", ".d.mts", ".min.js")):
        return False
    if language == "go" and name.endswith("_test.go"):
        return False
    return not (language == "typescript" and ".test." in name)


def unpack_familiar(language: str) -> None:
    """Unpack the JDK's or Go's own sources into the cache when they are not there yet.

    Java: ``java.base`` from the installed JDK's ``src.zip``. Go: Debian's
    ``golang-1.19-src`` package (``apt-get download``; only its ``src`` folder is kept).
    Other languages use files already on the machine.
    """
    import subprocess
    import tempfile
    import zipfile

    if language == "java" and not JAVA_SRC.is_dir():
        found = sorted(Path("/usr/lib/jvm").glob("*/lib/src.zip"))
        if not found:
            raise FileNotFoundError(
                "no JDK src.zip under /usr/lib/jvm (apt-get install openjdk-17-source)"
            )
        with zipfile.ZipFile(found[0]) as z:
            members = [m for m in z.namelist() if m.startswith("java.base/java/")]
            z.extractall(JAVA_SRC, members)
    elif language == "go" and not GO_SRC.is_dir():
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["apt-get", "download", "golang-1.19-src"], cwd=tmp, check=True)
            deb = next(Path(tmp).glob("*.deb"))
            subprocess.run(["dpkg-deb", "-x", str(deb), f"{tmp}/x"], check=True)
            src = next(Path(f"{tmp}/x").glob("usr/share/go-*/src"))
            GO_SRC.parent.mkdir(parents=True, exist_ok=True)
            src.rename(GO_SRC)


def find_sources(language: str, corpus: str = "familiar") -> list[str]:
    """Sorted candidate source files of ``language`` on this machine (may be empty)."""
    if corpus == "fresh":
        from bench.fresh import fresh_sources

        return [
            p for p in fresh_sources(language) if _MIN_BYTES <= os.path.getsize(p) <= _MAX_BYTES
        ]
    unpack_familiar(language)
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


def _function_rows(root: Node, language: str) -> list[tuple[int, int]]:
    """(first, last) rows strictly inside each function body (between its first and last line)."""
    rows: list[tuple[int, int]] = []
    for node in _walk(root):
        if node.type in _FUNCTIONS[language]:
            body = node.child_by_field_name("body")
            if body is not None and body.end_point.row > node.start_point.row + 1:
                rows.append((node.start_point.row + 1, body.end_point.row))
    return rows


def line0_holes(path: str, text: str, language: str) -> list[Hole]:
    """Every column-0 hole of a file: one line inside a function, indentation included.

    Any line after the function's first line, up to and including the line that closes
    its body, that is not blank, not a comment and at most 100 characters long: closers,
    ``else`` lines and pieces of multi-line statements count as well. The line is removed
    with its indentation (its line break stays), and the cursor sits at column 0.
    """
    tree = parse(text, language)
    if tree is None or count_errors(tree.root_node):
        return []
    starts = _line_starts(text)
    lines = text.split("\n")
    comments = {
        row
        for node in _walk(tree.root_node)
        if "comment" in node.type
        for row in range(node.start_point.row, node.end_point.row + 1)
    }
    strings = {
        row
        for node in _walk(tree.root_node)
        if node.type in ("string", "template_string", "raw_string_literal", "text_block")
        and node.end_point.row > node.start_point.row
        for row in range(node.start_point.row + 1, node.end_point.row + 1)
    }
    holes: list[Hole] = []
    seen: set[int] = set()
    for first, last in _function_rows(tree.root_node, language):
        for row in range(first, last + 1):
            if row in seen or row in comments or row in strings:
                continue
            body = lines[row].strip()
            if not (1 <= len(body) <= _LINE_CHARS[1]):
                continue
            seen.add(row)
            start = starts[row]
            end = start + len(lines[row])
            holes.append(Hole(language, "line0", path, text[:start] + text[end:], start, body))
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


def collect_holes(
    language: str, shape: str, limit: int, seed: int = 0, corpus: str = "familiar"
) -> list[Hole]:
    """Up to ``limit`` holes of one language and shape, at most one per file, seeded."""
    salt = "" if corpus == "familiar" else f":{corpus}"
    rng = random.Random(f"{seed}:{language}:{shape}{salt}")
    files = find_sources(language, corpus)
    rng.shuffle(files)
    cut = {"line": line_holes, "line0": line0_holes, "block": block_holes}[shape]
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
