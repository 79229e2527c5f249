"""Every fact coder-lsp knows about a programming language, in one table.

One :class:`LanguageSpec` per tree-sitter grammar says how a document is recognised (LSP
language ids, file extensions and names), how its comments look, how its blocks open and
close, what a left-out body reads like in repository context, which import resolver and
which tag query (``repo/queries/<name>.scm``) the workspace index uses, and whether its
files are code worth indexing at all. Every other module reads this table; none keeps a
list of languages of its own.

Adding a language is one entry in :data:`LANGUAGES` (plus, for definitions in the
workspace index, one tag query file); see the README's contributing notes.

This module sits on the ground floor: it imports nothing else of the server, so the
syntax, repository and completion layers can all read it. Names used as keys
(:attr:`LanguageSpec.imports`) are plain strings that the upper layers map to their own
functions.
"""

from __future__ import annotations

import os
import posixpath
import typing
from dataclasses import dataclass
from typing import Literal

import tree_sitter_language_pack as tslp

__all__ = [
    "BLOCK_COMMENT_ENDS",
    "BRACE_STUB",
    "KNOWN_GRAMMARS",
    "LANGUAGES",
    "PYTHON_STUB",
    "WATCHED_FILES_GLOB",
    "Blocks",
    "ImportStyle",
    "LanguageSpec",
    "comment_marker",
    "language_for",
    "line_comment_markers",
    "spec_for",
]

KNOWN_GRAMMARS: frozenset[str] = frozenset(typing.get_args(tslp.SupportedLanguage))
"""Every grammar name the installed language pack can load."""

PYTHON_STUB = "..."
"""Python's body for left-out code: ``def f(x): ...`` is a complete definition."""
BRACE_STUB = "/* ... */ }"
"""A brace language's: ``f(x) { /* ... */ }`` is one too, where ``f(x) {`` alone, followed
by the next header, reads as broken code the model may imitate."""

Blocks = Literal["braces", "indent", "end", "shell"]
"""How a body opens and closes: ``{ … }``; a ``:`` header and indentation (Python);
``then``/``do``/``def`` … ``end``; a shell's ``then … fi`` / ``do … done``."""

ImportStyle = Literal["python", "ecma", "java", "go", "rust", "c"]
"""The import resolver of ``repo/imports.py`` a language's imports go through."""


@dataclass(frozen=True, slots=True)
class LanguageSpec:
    """What coder-lsp knows about one language (one tree-sitter grammar)."""

    grammar: str
    """Grammar name in tree-sitter-language-pack, and the language's name everywhere else."""
    extensions: tuple[str, ...] = ()
    """File extensions, lower case with the dot (``.py``)."""
    filenames: tuple[str, ...] = ()
    """Whole file names, lower case (``makefile``), for files without a telling extension."""
    ids: tuple[str, ...] = ()
    """LSP ``languageId`` spellings besides the grammar name itself (``typescriptreact``)."""
    line_comments: tuple[str, ...] = ("//",)
    """Line-comment markers; the first one writes the path lines of repository context."""
    block_comment: tuple[str, str] | None = None
    """Opening and closing marker of a block comment, where the language has one."""
    stub: str = ""
    """What stands for a left-out body in repository context: :data:`PYTHON_STUB`,
    :data:`BRACE_STUB`, or "" (the outline keeps headers as they are)."""
    imports: ImportStyle | None = None
    """Which import resolver maps the file's imports to workspace files (None: none)."""
    tag_query: str | None = None
    """Stem of the tag query file (``repo/queries/<stem>.scm``); None: no definitions."""
    blocks: Blocks = "braces"
    """How bodies open and close (trigger and post-processing rules)."""
    empty_statement: bool = True
    """Whether ``;`` is a whole statement (C family): ``if (x) ;`` closes a header."""
    apostrophe_quotes: bool = True
    """Whether ``'`` opens a string or character (not Rust lifetimes or Lisp quotes)."""
    docstrings: bool = False
    """Whether a definition's documentation is a string in its body (else comments above)."""
    code: bool = True
    """Whether files are code to index for repository context (not data or prose)."""


_SLASH = ("//",)
_HASH = ("#",)
_DASH = ("--",)
_SEMI = (";",)
_PERCENT = ("%",)
_C_BLOCK = ("/*", "*/")
_ML_BLOCK = ("(*", "*)")
_XML_BLOCK = ("<!--", "-->")


def _brace(grammar: str, *extensions: str, **facts: typing.Any) -> LanguageSpec:
    """A C-family language: ``//`` and ``/* */`` comments, brace bodies."""
    facts.setdefault("block_comment", _C_BLOCK)
    return LanguageSpec(grammar, extensions, **facts)


def _hash(grammar: str, *extensions: str, **facts: typing.Any) -> LanguageSpec:
    """A language with ``#`` line comments."""
    return LanguageSpec(grammar, extensions, line_comments=_HASH, **facts)


def _data(grammar: str, *extensions: str, **facts: typing.Any) -> LanguageSpec:
    """A data or prose format: parsed when open, never indexed for repository context."""
    return LanguageSpec(grammar, extensions, code=False, **facts)


LANGUAGES: tuple[LanguageSpec, ...] = (
    # --- languages with import resolution or a tag query --------------------------------
    _hash(
        "python",
        ".py",
        ".pyi",
        ".pyw",
        ids=("py", "python3"),
        stub=PYTHON_STUB,
        imports="python",
        tag_query="python-tags",
        blocks="indent",
        empty_statement=False,
        docstrings=True,
    ),
    _brace(
        "javascript",
        ".js",
        ".mjs",
        ".cjs",
        ".jsx",
        ids=("javascriptreact", "jsx", "js"),
        imports="ecma",
        tag_query="javascript-tags",
        stub=BRACE_STUB,
    ),
    _brace(
        "typescript",
        ".ts",
        ".mts",
        ".cts",
        ids=("ts",),
        imports="ecma",
        tag_query="typescript-tags",
        stub=BRACE_STUB,
    ),
    _brace(
        "tsx",
        ".tsx",
        ids=("typescriptreact",),
        imports="ecma",
        tag_query="typescript-tags",
        stub=BRACE_STUB,
    ),
    _brace("java", ".java", imports="java", tag_query="java-tags", stub=BRACE_STUB),
    _brace(
        "go",
        ".go",
        ids=("golang",),
        imports="go",
        tag_query="go-tags",
        empty_statement=False,
        stub=BRACE_STUB,
    ),
    _brace(
        "rust",
        ".rs",
        ids=("rs",),
        imports="rust",
        tag_query="rust-tags",
        empty_statement=False,
        apostrophe_quotes=False,
        stub=BRACE_STUB,
    ),
    _brace("c", ".c", ".h", imports="c", tag_query="c-tags", stub=BRACE_STUB),
    _brace(
        "cpp",
        ".cc",
        ".cpp",
        ".cxx",
        ".c++",
        ".hh",
        ".hpp",
        ".hxx",
        ".ipp",
        ids=("c++", "objective-cpp", "objcpp"),
        imports="c",
        tag_query="cpp-tags",
        stub=BRACE_STUB,
    ),
    _brace("cuda", ".cu", ".cuh", ids=("cuda-cpp",), imports="c"),
    _brace("objc", ".m", ".mm", ids=("objective-c",), imports="c"),
    _brace("kotlin", ".kt", ".kts", tag_query="kotlin-tags", stub=BRACE_STUB),
    # --- other code ------------------------------------------------------------------------
    _brace("csharp", ".cs", ids=("c#", "cs"), stub=BRACE_STUB),
    _brace("php", ".php", line_comments=("//", "#"), stub=BRACE_STUB),
    _brace("swift", ".swift", stub=BRACE_STUB),
    _brace("scala", ".scala", ".sc", stub=BRACE_STUB),
    _brace("dart", ".dart", stub=BRACE_STUB),
    _brace("groovy", ".groovy", ".gradle"),
    _brace("solidity", ".sol"),
    _brace("d", ".d"),
    _brace("haxe", ".hx"),
    _brace("odin", ".odin"),
    _brace("glsl", ".glsl"),
    _brace("hlsl", ".hlsl"),
    _brace("wgsl", ".wgsl"),
    LanguageSpec("verilog", (".v", ".sv"), block_comment=_C_BLOCK),
    LanguageSpec("zig", (".zig",)),
    LanguageSpec("gleam", (".gleam",)),
    LanguageSpec("fortran", (".f90", ".f95")),
    LanguageSpec("vim", (".vim",)),
    LanguageSpec("tcl", (".tcl",)),
    LanguageSpec("purescript", (".purs",)),
    _hash(
        "ruby",
        ".rb",
        ".rake",
        ".gemspec",
        filenames=("gemfile", "rakefile"),
        ids=("rb",),
        block_comment=("=begin", "=end"),
        blocks="end",
        empty_statement=False,
    ),
    LanguageSpec(
        "lua",
        (".lua",),
        line_comments=_DASH,
        block_comment=("--[[", "]]"),
        blocks="end",
        empty_statement=False,
    ),
    LanguageSpec(
        "luau",
        (".luau",),
        line_comments=_DASH,
        block_comment=("--[[", "]]"),
        blocks="end",
        empty_statement=False,
    ),
    _hash("elixir", ".ex", ".exs", blocks="end"),
    _hash("julia", ".jl", blocks="end"),
    _hash("crystal", blocks="end"),
    _hash(
        "bash",
        ".sh",
        ".bash",
        ".zsh",
        filenames=(".bashrc", ".zshrc", ".profile"),
        ids=("shellscript", "shell", "sh", "zsh"),
        blocks="shell",
        empty_statement=False,
    ),
    _hash("fish", ".fish"),
    _hash("powershell", ".ps1", ids=("ps1", "pwsh")),
    _hash("perl", ".pl", ".pm"),
    _hash("r", ".r"),
    _hash("nim", ".nim"),
    _hash("make", ".mk", filenames=("makefile", "gnumakefile"), ids=("makefile",)),
    _hash("cmake", ".cmake", filenames=("cmakelists.txt",)),
    _hash("dockerfile", filenames=("dockerfile",), ids=("docker",)),
    _hash("starlark", ".star", ".bzl", filenames=("build", "build.bazel", "workspace")),
    _hash("meson", filenames=("meson.build",)),
    LanguageSpec("nix", (".nix",)),
    LanguageSpec("terraform", (".tf",), ids=("tf",)),
    LanguageSpec("hcl", (".hcl",), ids=("terraform-vars",)),
    LanguageSpec("haskell", (".hs",), line_comments=_DASH, block_comment=("{-", "-}")),
    LanguageSpec("elm", (".elm",), line_comments=_DASH, block_comment=("{-", "-}")),
    LanguageSpec("ada", line_comments=_DASH),
    LanguageSpec("vhdl", (".vhd", ".vhdl"), line_comments=_DASH),
    LanguageSpec("ocaml", (".ml",), block_comment=_ML_BLOCK),
    LanguageSpec("ocaml_interface", (".mli",), block_comment=_ML_BLOCK),
    LanguageSpec("fsharp", (".fs", ".fsx"), ids=("fsharp",), block_comment=_ML_BLOCK),
    LanguageSpec("pascal", (".pas",), block_comment=_ML_BLOCK),
    LanguageSpec("erlang", (".erl", ".hrl"), line_comments=_PERCENT),
    LanguageSpec("matlab", line_comments=_PERCENT),
    LanguageSpec(
        "commonlisp",
        (".lisp",),
        line_comments=_SEMI,
        block_comment=("#|", "|#"),
        apostrophe_quotes=False,
    ),
    LanguageSpec("elisp", (".el",), line_comments=_SEMI, apostrophe_quotes=False),
    LanguageSpec("clojure", (".clj", ".cljs"), line_comments=_SEMI, apostrophe_quotes=False),
    LanguageSpec(
        "scheme",
        (".scm",),
        line_comments=_SEMI,
        block_comment=("#|", "|#"),
        apostrophe_quotes=False,
    ),
    LanguageSpec("racket", (".rkt",), line_comments=_SEMI, block_comment=("#|", "|#")),
    # --- data and prose: parsed when open, never indexed --------------------------------------
    _data("json", ".json", ids=("jsonc", "json5")),
    _data("yaml", ".yaml", ".yml", ids=("dockercompose",), line_comments=_HASH),
    _data("toml", ".toml", line_comments=_HASH),
    _data("ini", ".ini"),
    _data("xml", ".xml", block_comment=_XML_BLOCK),
    _data("html", ".html", ".htm", block_comment=_XML_BLOCK),
    _data("markdown", ".md", ".markdown", block_comment=_XML_BLOCK),
    _data("vue", ".vue", block_comment=_XML_BLOCK),
    _data("svelte", ".svelte", block_comment=_XML_BLOCK),
    _data("css", ".css", block_comment=_C_BLOCK),
    _data("scss", ".scss", block_comment=_C_BLOCK),
    _data("rst", ".rst", ids=("restructuredtext",)),
    _data("latex", ".tex", ids=("tex",), line_comments=_PERCENT),
    _data("bibtex", ".bib"),
    _data("sql", ".sql", line_comments=_DASH, block_comment=_C_BLOCK),
    _data("graphql", ".graphql", ".gql"),
    _data("proto", ".proto", block_comment=_C_BLOCK),
    _data("gitignore", filenames=(".gitignore",)),
    _data("gitattributes", filenames=(".gitattributes",)),
)
"""The language table: one entry per grammar coder-lsp knows more about than its name."""

_NO_GRAMMAR_IDS = frozenset({"vb", "plaintext", "text"})
"""LSP ids that name no grammar: the file's name decides (a ``.py`` file opened as text)."""

_BY_GRAMMAR: dict[str, LanguageSpec] = {spec.grammar: spec for spec in LANGUAGES}
_BY_ID: dict[str, str] = {i: spec.grammar for spec in LANGUAGES for i in spec.ids}
_BY_EXTENSION: dict[str, str] = {e: spec.grammar for spec in LANGUAGES for e in spec.extensions}
_BY_FILENAME: dict[str, str] = {n: spec.grammar for spec in LANGUAGES for n in spec.filenames}

BLOCK_COMMENT_ENDS: tuple[str, ...] = tuple(
    dict.fromkeys(spec.block_comment[1] for spec in LANGUAGES if spec.block_comment)
)
"""Every closing block-comment marker of the table: a comment node that ends with one
is closed, so the line after it is code again."""

WATCHED_FILES_GLOB = (
    "**/*.{" + ",".join(e[1:] for s in LANGUAGES if s.code for e in s.extensions) + "}"
)
"""Glob for ``workspace/didChangeWatchedFiles``: every extension the index reads."""


def spec_for(grammar: str | None) -> LanguageSpec | None:
    """The table's entry for the grammar ``grammar``; None when it has none."""
    return _BY_GRAMMAR.get(grammar) if grammar else None


def language_for(language_id: str | None, path: str | None) -> str | None:
    """Name the tree-sitter grammar for a document, or None when none is known.

    The LSP ``languageId`` wins; the file name and then its extension are the fallback.
    An id that is a grammar name of the language pack needs no table entry. Never
    raises: an unknown language simply has no grammar.
    """
    if language_id:
        key = language_id.strip().lower()
        mapped = _BY_ID.get(key)
        if mapped is not None:
            return mapped
        if key not in _NO_GRAMMAR_IDS and key in KNOWN_GRAMMARS:
            return key
    if path:
        name = os.path.basename(path).lower()
        by_name = _BY_FILENAME.get(name)
        if by_name is not None:
            return by_name
        by_ext = _BY_EXTENSION.get(os.path.splitext(name)[1])
        if by_ext is not None:
            return by_ext
    return None


def line_comment_markers(language: str | None) -> tuple[str, ...]:
    """Line-comment markers of ``language``; for no language at all, the common ones."""
    if language is None:
        return ("#", "//", "--")
    spec = _BY_GRAMMAR.get(language)
    return spec.line_comments if spec is not None else _SLASH


def comment_marker(path: str | None, language: str | None = None) -> str:
    """The line-comment marker for a file, from its language or name (``//`` if unknown)."""
    spec = _BY_GRAMMAR.get(language.lower()) if language else None
    if spec is None and path:
        spec = spec_for(language_for(None, posixpath.basename(path.replace("\\", "/"))))
    return spec.line_comments[0] if spec is not None else _SLASH[0]
