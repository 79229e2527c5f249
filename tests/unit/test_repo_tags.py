"""Tests for tag extraction: definitions, docstrings, imports per language."""

from __future__ import annotations

import pytest

from lsp_server.repo.parsing import parse
from lsp_server.repo.tags import (
    expand_use,
    extract_tags,
    has_tag_query,
    imports_from_tree,
    join_header,
    outline,
    render_definition,
)

PY = '''"""Module."""
import os, a.b as ab
from .x import y, z as w
from ..pkg.mod import *

LIMIT = 3


@decorator
def add(a, b):
    """Add two numbers."""
    def inner():
        pass
    total = a + b
    total += 0
    total += 0
    total += 0
    total += 0
    return total


class Box(Base):
    """A box."""

    size: int = 1

    def grow(self, n):
        return self.size + n
'''


def kinds(text: str, language: str) -> set[tuple[str, str]]:
    return {(t.kind, t.name) for t in extract_tags(text, language).tags}


def test_python_definitions_docstrings_and_methods() -> None:
    tags = extract_tags(PY, "python")
    by_name = {t.name: t for t in tags.tags}
    assert set(by_name) == {"LIMIT", "add", "Box", "grow"}  # no nested helper
    assert by_name["add"].kind == "function" and by_name["add"].line == 8  # decorator included
    assert (by_name["add"].doc_start, by_name["add"].doc_end) == (10, 10)
    assert by_name["grow"].kind == "method" and by_name["grow"].parent == "Box"
    assert by_name["LIMIT"].kind == "constant"


def test_python_imports_and_bindings() -> None:
    refs = [(i.source, i.name, i.alias, i.binding) for i in extract_tags(PY, "python").imports]
    assert refs == [
        ("os", None, None, "os"),
        ("a.b", None, "ab", "ab"),
        (".x", "y", None, "y"),
        (".x", "z", "w", "w"),
        ("..pkg.mod", "*", None, "mod"),
    ]


def test_render_definition_cuts_long_bodies() -> None:
    lines = PY.split("\n")
    tag = next(t for t in extract_tags(PY, "python").tags if t.name == "add")
    text = render_definition(lines, tag, body_lines=2)
    assert text.startswith('@decorator\ndef add(a, b):\n    """Add two numbers."""')
    assert text.endswith("\n    ...")
    assert "return total" not in text
    short = next(t for t in extract_tags(PY, "python").tags if t.name == "grow")
    assert render_definition(lines, short).endswith("return self.size + n")


def test_outline_lists_signatures() -> None:
    tags = extract_tags(PY, "python").tags
    text = outline(PY.split("\n"), tags)
    assert "def add(a, b):" in text and "    def grow(self, n):" in text
    assert "return" not in text


@pytest.mark.parametrize(
    ("language", "source", "expected"),
    [
        (
            "javascript",
            "export const K = 1;\nexport function f(a) { return a }\n"
            "class C { m(x) {} }\nconst g = (x) => x;\n",
            {
                ("constant", "K"),
                ("function", "f"),
                ("class", "C"),
                ("method", "m"),
                ("function", "g"),
            },
        ),
        (
            "typescript",
            "interface I { a: number }\ntype A = string;\nenum E { X }\n"
            "export abstract class C { m(): void {} }\n",
            {("type", "I"), ("type", "A"), ("type", "E"), ("class", "C"), ("method", "m")},
        ),
        (
            "java",
            "package p;\npublic class A { static final int K = 1; void m() {} }\n",
            {("class", "A"), ("constant", "K"), ("method", "m")},
        ),
        (
            "go",
            "package main\nconst K = 1\ntype T struct{}\nfunc F() {}\nfunc (t *T) M() {}\n",
            {("constant", "K"), ("type", "T"), ("function", "F"), ("method", "M")},
        ),
        (
            "rust",
            "pub fn f() {}\nstruct S;\ntrait T { fn t(&self); }\nimpl S { fn m(&self) {} }\n"
            "const K: i32 = 1;\n",
            {
                ("function", "f"),
                ("class", "S"),
                ("type", "T"),
                ("method", "t"),
                ("method", "m"),
                ("constant", "K"),
            },
        ),
        (
            "c",
            "#define K 1\nint f(int x) { return x; }\nint g(int);\nstruct S { int a; };\n",
            {("macro", "K"), ("function", "f"), ("function", "g"), ("class", "S")},
        ),
        (
            "cpp",
            "class C { public: void m(); };\nvoid C::m() {}\nusing A = int;\n",
            {("class", "C"), ("method", "m"), ("function", "m"), ("type", "A")},
        ),
    ],
)
def test_definitions_per_language(
    language: str, source: str, expected: set[tuple[str, str]]
) -> None:
    assert kinds(source, language) == expected


@pytest.mark.parametrize(
    ("language", "source", "expected"),
    [
        (
            "javascript",
            'import a, {b as c} from "./x";\nimport * as ns from "../y";\n'
            'const z = require("./z");\n',
            {("./x", "b", "c"), ("./x", None, "a"), ("../y", None, "ns"), ("./z", None, None)},
        ),
        (
            "java",
            "import com.bar.Baz;\nimport com.x.*;\n",
            {("com.bar.Baz", None, None), ("com.x", "*", None)},
        ),
        (
            "go",
            'package m\nimport (\n "fmt"\n p "ex.com/m/pkg"\n)\n',
            {("fmt", None, None), ("ex.com/m/pkg", None, "p")},
        ),
        (
            "rust",
            "mod a;\nuse crate::x::{Y, z::W as V};\n",
            {("a", None, None), ("crate::x::Y", None, None), ("crate::x::z::W", None, "V")},
        ),
        ("c", '#include "a/b.h"\n#include <stdio.h>\n', {("a/b.h", None, None)}),
    ],
)
def test_imports_per_language(
    language: str, source: str, expected: set[tuple[str, str | None, str | None]]
) -> None:
    got = {(i.source, i.name, i.alias) for i in extract_tags(source, language).imports}
    assert got == expected


def test_java_and_go_packages() -> None:
    assert extract_tags("package com.foo;\nclass A {}\n", "java").package == "com.foo"
    assert extract_tags("package util\n", "go").package == "util"


def test_rust_use_trees() -> None:
    assert expand_use("crate::a::{self, b::{C, D as E}, *}") == [
        ("crate::a", None),
        ("crate::a::b::C", None),
        ("crate::a::b::D", "E"),
        ("crate::a::*", None),
    ]
    assert expand_use("crate::base::{class as cls}") == [("crate::base::class", "cls")]


def test_unsupported_or_broken_input_never_raises() -> None:
    assert extract_tags("whatever", None).tags == ()
    assert extract_tags("x", "markdown").tags == ()
    assert not has_tag_query("markdown") and has_tag_query("python")
    broken = extract_tags(b"def ok():\n    pass\ndef (((\n\xff\xfe class", "python")
    assert [t.name for t in broken.tags] == ["ok"]


def test_imports_from_tree_adds_local_imports_of_the_given_rows() -> None:
    source = (
        "import os\n"
        "class C:\n"
        "    def f(self):\n"
        "        from .helpers import deep\n"
        "        return deep()\n"
        "\n"
        "    def g(self):\n"
        "        from .other import far\n"
        "        return far()\n"
    )
    tree = parse(source, "python")
    assert tree is not None
    top = {r.source for r in imports_from_tree(tree.root_node, "python")}
    assert top == {"os"}  # method bodies are not searched by default
    near = {r.source for r in imports_from_tree(tree.root_node, "python", (2, 5))}
    assert near == {"os", ".helpers"}


def test_outline_as_a_python_stub() -> None:
    source = (
        "class Base:\n"
        "    def run(\n"
        "        self,\n"
        "        task: int,\n"
        "    ) -> bool:\n"
        "        return True\n"
        "\n"
        "    def doc(self):\n"
        '        """Documented."""\n'
        "        return 1\n"
        "\n"
        "\n"
        "def free(x):\n"
        "    return x\n"
    )
    lines = source.split("\n")
    tags = extract_tags(source, "python").tags
    text = outline(lines, tags, max_header_lines=2, stub="...")
    # Multi-line signatures are joined, bodiless ones get ``...``; a class whose members
    # follow keeps its header as it is, and a docstring is a body already.
    assert text.split("\n") == [
        "class Base:",
        "    def run(self, task: int) -> bool: ...",
        "    def doc(self):",
        '        """Documented."""',
        "def free(x): ...",
    ]
    compile(text, "stub.py", "exec")  # the outline is valid Python
    # Without a stub, outlines stay as they were (other languages).
    assert "    def run(\n        self," in outline(lines, tags, max_header_lines=2)


def test_join_header_keeps_decorators_and_comments() -> None:
    assert join_header(["@cache(", "  size=1)", "def f(", "    a,", ") -> int:"]) == [
        "@cache(",
        "  size=1)",
        "def f(a) -> int:",
    ]
    with_comment = ["def f(a,  # the first", "      b):"]
    assert join_header(with_comment) == with_comment
