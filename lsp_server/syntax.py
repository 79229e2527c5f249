"""Language lookup and tree-sitter parsing for open documents.

Maps an LSP ``languageId`` (or a file extension) to a grammar of
``tree-sitter-language-pack``, hands out cached parsers, and keeps one syntax tree
per open document up to date incrementally (``tree.edit`` + reparse with the old
tree) as ``didChange`` edits arrive.

Offsets everywhere else in coder-lsp are indices into the Python ``str``; tree-sitter
works in UTF-8 bytes and (row, byte-column) points. The helpers here do that
conversion, with an ASCII fast path since most source files are pure ASCII.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import typing

import tree_sitter_language_pack as tslp
from tree_sitter import Language, Node, Parser, Point, Tree

logger = logging.getLogger(__name__)

__all__ = [
    "ParsedDocument",
    "byte_offset",
    "byte_to_offset",
    "count_errors",
    "get_language",
    "get_parser",
    "language_for",
    "node_at",
    "parse",
    "point_at",
]

KNOWN_GRAMMARS: frozenset[str] = frozenset(typing.get_args(tslp.SupportedLanguage))
"""Every grammar name the installed language pack can load."""

# LSP language identifiers (VS Code's list plus common editor spellings) whose grammar
# name differs from the identifier itself. Identifiers equal to a grammar name need no
# entry: they are looked up in KNOWN_GRAMMARS directly.
_LANGUAGE_IDS: dict[str, str] = {
    "typescriptreact": "tsx",
    "javascriptreact": "javascript",
    "jsx": "javascript",
    "js": "javascript",
    "ts": "typescript",
    "shellscript": "bash",
    "shell": "bash",
    "sh": "bash",
    "zsh": "bash",
    "c#": "csharp",
    "cs": "csharp",
    "c++": "cpp",
    "cuda-cpp": "cuda",
    "objective-c": "objc",
    "objective-cpp": "cpp",
    "objcpp": "cpp",
    "golang": "go",
    "rs": "rust",
    "py": "python",
    "python3": "python",
    "rb": "ruby",
    "ps1": "powershell",
    "pwsh": "powershell",
    "dockercompose": "yaml",
    "docker": "dockerfile",
    "makefile": "make",
    "tex": "latex",
    "jsonc": "json",
    "json5": "json",
    "restructuredtext": "rst",
    "terraform-vars": "hcl",
    "tf": "terraform",
    "fsharp": "fsharp",
    "vb": "",
    "plaintext": "",
    "text": "",
}

_EXTENSIONS: dict[str, str] = {
    ".py": "python",
    ".pyi": "python",
    ".pyw": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".java": "java",
    ".go": "go",
    ".rs": "rust",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".c++": "cpp",
    ".hh": "cpp",
    ".hpp": "cpp",
    ".hxx": "cpp",
    ".ipp": "cpp",
    ".cs": "csharp",
    ".rb": "ruby",
    ".rake": "ruby",
    ".gemspec": "ruby",
    ".php": "php",
    ".lua": "lua",
    ".sh": "bash",
    ".bash": "bash",
    ".zsh": "bash",
    ".kt": "kotlin",
    ".kts": "kotlin",
    ".swift": "swift",
    ".scala": "scala",
    ".sc": "scala",
    ".dart": "dart",
    ".ex": "elixir",
    ".exs": "elixir",
    ".erl": "erlang",
    ".hrl": "erlang",
    ".hs": "haskell",
    ".ml": "ocaml",
    ".mli": "ocaml_interface",
    ".jl": "julia",
    ".r": "r",
    ".pl": "perl",
    ".pm": "perl",
    ".zig": "zig",
    ".nim": "nim",
    ".clj": "clojure",
    ".cljs": "clojure",
    ".el": "elisp",
    ".lisp": "commonlisp",
    ".scm": "scheme",
    ".rkt": "racket",
    ".m": "objc",
    ".mm": "objc",
    ".cu": "cuda",
    ".cuh": "cuda",
    ".html": "html",
    ".htm": "html",
    ".css": "css",
    ".scss": "scss",
    ".json": "json",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".toml": "toml",
    ".xml": "xml",
    ".sql": "sql",
    ".md": "markdown",
    ".markdown": "markdown",
    ".vue": "vue",
    ".svelte": "svelte",
    ".tf": "terraform",
    ".hcl": "hcl",
    ".proto": "proto",
    ".graphql": "graphql",
    ".gql": "graphql",
    ".ps1": "powershell",
    ".fish": "fish",
    ".vim": "vim",
    ".cmake": "cmake",
    ".mk": "make",
    ".nix": "nix",
    ".sol": "solidity",
    ".v": "verilog",
    ".sv": "verilog",
    ".vhd": "vhdl",
    ".vhdl": "vhdl",
    ".f90": "fortran",
    ".f95": "fortran",
    ".groovy": "groovy",
    ".gradle": "groovy",
    ".pas": "pascal",
    ".d": "d",
    ".elm": "elm",
    ".gleam": "gleam",
    ".hx": "haxe",
    ".odin": "odin",
    ".tcl": "tcl",
    ".glsl": "glsl",
    ".hlsl": "hlsl",
    ".wgsl": "wgsl",
    ".ini": "ini",
    ".rst": "rst",
    ".tex": "latex",
    ".bib": "bibtex",
    ".star": "starlark",
    ".bzl": "starlark",
    ".fs": "fsharp",
    ".fsx": "fsharp",
    ".purs": "purescript",
    ".luau": "luau",
}

_FILENAMES: dict[str, str] = {
    "makefile": "make",
    "gnumakefile": "make",
    "dockerfile": "dockerfile",
    "cmakelists.txt": "cmake",
    "build": "starlark",
    "build.bazel": "starlark",
    "workspace": "starlark",
    "gemfile": "ruby",
    "rakefile": "ruby",
    ".bashrc": "bash",
    ".zshrc": "bash",
    ".profile": "bash",
    "meson.build": "meson",
    ".gitignore": "gitignore",
    ".gitattributes": "gitattributes",
}


def language_for(language_id: str | None, path: str | None) -> str | None:
    """Name the tree-sitter grammar for a document, or None when none is known.

    The LSP ``languageId`` wins; the file name and then its extension are the fallback.
    Never raises: an unknown language simply has no grammar.
    """
    if language_id:
        key = language_id.strip().lower()
        mapped = _LANGUAGE_IDS.get(key)
        if mapped is not None:
            if mapped:
                return mapped
        elif key in KNOWN_GRAMMARS:
            return key
    if path:
        name = os.path.basename(path).lower()
        by_name = _FILENAMES.get(name)
        if by_name is not None:
            return by_name
        ext = os.path.splitext(name)[1]
        by_ext = _EXTENSIONS.get(ext)
        if by_ext is not None:
            return by_ext
    return None


@functools.cache
def get_language(language: str) -> Language | None:
    """The tree-sitter ``Language`` for a grammar name (cached), or None if unavailable."""
    if language not in KNOWN_GRAMMARS:
        return None
    try:
        return tslp.get_language(typing.cast("tslp.SupportedLanguage", language))
    except (LookupError, OSError, ValueError) as err:
        # A grammar missing from this platform's wheel is not an error for the user:
        # the syntax-aware stages fall back to indentation and bracket rules.
        logger.warning("tree-sitter grammar %r could not be loaded: %s", language, err)
        return None


# Parsers hold mutable state and are not safe to share between threads; the server may
# run completion stages on worker threads, so each thread keeps its own parsers.
_local = threading.local()


def get_parser(language: str) -> Parser | None:
    """A parser for ``language``, cached per thread; None when no grammar is known."""
    cache: dict[str, Parser | None] | None = getattr(_local, "parsers", None)
    if cache is None:
        cache = {}
        _local.parsers = cache
    if language in cache:
        return cache[language]
    lang = get_language(language)
    parser = Parser(lang) if lang is not None else None
    cache[language] = parser
    return parser


def parse(text: str, language: str | None) -> Tree | None:
    """Parse ``text`` with the grammar ``language``; None when no grammar is known."""
    if not language:
        return None
    parser = get_parser(language)
    if parser is None:
        return None
    return parser.parse(text.encode("utf-8", "surrogatepass"))


def byte_offset(text: str, offset: int) -> int:
    """UTF-8 byte offset of the ``str`` index ``offset`` in ``text`` (clamped)."""
    offset = max(0, min(offset, len(text)))
    if text.isascii():
        return offset
    return len(text[:offset].encode("utf-8", "surrogatepass"))


def byte_to_offset(text: str, byte: int, data: bytes | None = None) -> int:
    """``str`` index of the UTF-8 byte offset ``byte`` in ``text`` (clamped).

    ``data`` may pass ``text`` already encoded, to save encoding it again.
    """
    if text.isascii():
        return max(0, min(byte, len(text)))
    if data is None:
        data = text.encode("utf-8", "surrogatepass")
    byte = max(0, min(byte, len(data)))
    return len(data[:byte].decode("utf-8", "ignore"))


def point_at(text: str, offset: int) -> Point:
    """Tree-sitter point (row, UTF-8 byte column) of the ``str`` index ``offset``."""
    offset = max(0, min(offset, len(text)))
    row = text.count("\n", 0, offset)
    line_start = text.rfind("\n", 0, offset) + 1
    segment = text[line_start:offset]
    column = len(segment) if segment.isascii() else len(segment.encode("utf-8", "surrogatepass"))
    return Point(row, column)


def node_at(tree: Tree, byte: int) -> Node:
    """The smallest node that contains (or touches) UTF-8 byte offset ``byte``."""
    root = tree.root_node
    node = root.descendant_for_byte_range(byte, byte)
    return node if node is not None else root


def count_errors(node: Node) -> int:
    """Number of ERROR and MISSING nodes under ``node`` (walks only subtrees with errors)."""
    if not node.has_error:
        return 0
    total = 0
    stack = [node]
    while stack:
        current = stack.pop()
        if current.is_error or current.is_missing:
            total += 1
        stack.extend(child for child in current.children if child.has_error or child.is_missing)
    return total


def _end_point(start: Point, inserted: str) -> Point:
    """The point reached after inserting ``inserted`` at ``start``."""
    newlines = inserted.count("\n")
    if newlines == 0:
        return Point(start.row, start.column + len(inserted.encode("utf-8", "surrogatepass")))
    tail = inserted[inserted.rfind("\n") + 1 :]
    return Point(start.row + newlines, len(tail.encode("utf-8", "surrogatepass")))


class ParsedDocument:
    """The text and syntax tree of one open document, updated incrementally.

    ``tree`` is None when no grammar is known for ``language``; the text is still
    tracked so callers can treat every document alike.
    """

    __slots__ = ("_ascii", "_data", "language", "text", "tree")

    def __init__(self, text: str, language: str | None) -> None:
        """Parse ``text`` in full with the grammar ``language`` (if any)."""
        self.text = text
        self.language = language
        self._ascii = text.isascii()
        self._data = text.encode("utf-8", "surrogatepass")
        parser = get_parser(language) if language else None
        self.tree: Tree | None = parser.parse(self._data) if parser is not None else None

    def replace_all(self, text: str) -> None:
        """Replace the whole text (a full-sync change) and parse it from scratch."""
        self.text = text
        self._ascii = text.isascii()
        self._data = text.encode("utf-8", "surrogatepass")
        parser = get_parser(self.language) if self.language else None
        self.tree = parser.parse(self._data) if parser is not None else None

    def _byte(self, offset: int) -> int:
        if self._ascii:
            return offset
        return len(self.text[:offset].encode("utf-8", "surrogatepass"))

    def apply_edit(self, start_offset: int, end_offset: int, new_text: str) -> None:
        """Replace ``text[start_offset:end_offset]`` with ``new_text`` and reparse.

        The old tree is edited with byte offsets and points and passed to the parser,
        so tree-sitter reuses every unchanged subtree instead of parsing afresh.
        """
        text = self.text
        start_offset = max(0, min(start_offset, len(text)))
        end_offset = max(start_offset, min(end_offset, len(text)))
        start_byte = self._byte(start_offset)
        removed = text[start_offset:end_offset]
        old_end_byte = start_byte + (
            len(removed) if removed.isascii() else len(removed.encode("utf-8", "surrogatepass"))
        )
        new_bytes = new_text.encode("utf-8", "surrogatepass")
        new_end_byte = start_byte + len(new_bytes)

        start_point = None
        old_end_point = None
        if self.tree is not None:
            start_point = point_at(text, start_offset)
            old_end_point = _end_point(start_point, removed)

        self.text = text[:start_offset] + new_text + text[end_offset:]
        self._ascii = self._ascii and new_text.isascii()
        self._data = self._data[:start_byte] + new_bytes + self._data[old_end_byte:]

        if self.tree is None or start_point is None or old_end_point is None:
            return
        parser = get_parser(typing.cast(str, self.language))
        if parser is None:
            return
        # Edit a copy (cheap: subtrees are shared) so a tree already handed to a
        # completion running on another thread stays consistent with its own snapshot.
        edited = self.tree.copy()
        edited.edit(
            start_byte=start_byte,
            old_end_byte=old_end_byte,
            new_end_byte=new_end_byte,
            start_point=start_point,
            old_end_point=old_end_point,
            new_end_point=_end_point(start_point, new_text),
        )
        self.tree = parser.parse(self._data, edited)

    def byte_offset(self, offset: int) -> int:
        """UTF-8 byte offset of the ``str`` index ``offset`` (clamped)."""
        return self._byte(max(0, min(offset, len(self.text))))
