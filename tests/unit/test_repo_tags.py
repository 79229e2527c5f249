"""Tests for tag extraction: definitions, docstrings, imports per language."""

from __future__ import annotations

import pytest

from lsp_server.repo.tags import (
    BRACE_STUB,
    expand_use,
    extract_tags,
    has_tag_query,
    imports_from_tree,
    join_header,
    outline,
    render_definition,
)
from lsp_server.syntax import parse

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


def test_a_body_is_cut_between_statements_not_inside_brackets() -> None:
    text = (
        "def build(cfg):\n    x = 1\n    result = make(\n        cfg.a,\n        cfg.b,\n"
        "        cfg.c,\n    )\n    return result\n"
    )
    tag = next(t for t in extract_tags(text, "python").tags if t.name == "build")
    # Three body lines would end inside ``make(``: the cut backs off to ``x = 1``.
    shown = render_definition(text.split("\n"), tag, body_lines=3)
    assert shown == "def build(cfg):\n    x = 1\n    ..."


def test_a_brace_function_cut_short_is_still_code() -> None:
    text = (
        "function total (items) {\n  let sum = 0\n  for (const item of items) {\n"
        "    sum += item.price\n  }\n  log.info(\n    'total',\n    sum,\n  )\n"
        "  return sum\n}\n"
    )
    tag = next(t for t in extract_tags(text, "javascript").tags if t.name == "total")
    shown = render_definition(text.split("\n"), tag, body_lines=6, stub=BRACE_STUB)
    assert shown.endswith("    sum += item.price\n  }\n  // ...\n}")
    tree = parse(shown, "javascript")
    assert tree is not None and not tree.root_node.has_error, shown


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
            'const z = require("./z");\nrequire("./side");\n',
            {
                ("./x", "b", "c"),
                ("./x", "default", "a"),
                ("../y", None, "ns"),
                ("./z", "default", "z"),
                ("./side", None, None),
            },
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


JS_IMPORTS = """import W0, { default as W1, b as c } from "./a";
export { Widget as W2, default, default as W3 } from "./a";
export * from "./star";
export * as ns from "./star2";
const { Widget, b: W4, d = 1, ...rest } = require('./cjs');
const W5 = require("./a.js"), W6 = require("./b");
const W7 = require('./z').Zed;
const {
  M1,
  M2,
} = require('./multi');
foo(require('./inner'));
const config = loadConfig();
"""


@pytest.mark.parametrize("language", ["javascript", "typescript"])
def test_javascript_es_and_commonjs_imports(language: str) -> None:
    tags = extract_tags(JS_IMPORTS, language)
    got = {(i.source, i.name, i.alias) for i in tags.imports}
    assert got == {
        ("./a", "default", "W0"),
        ("./a", "default", "W1"),
        ("./a", "b", "c"),
        ("./a", "Widget", "W2"),
        ("./a", "default", None),
        ("./a", "default", "W3"),
        ("./star", "*", None),
        ("./star2", None, "ns"),
        ("./cjs", "Widget", None),
        ("./cjs", "b", "W4"),
        ("./cjs", "d", None),
        ("./a.js", "default", "W5"),
        ("./b", "default", "W6"),
        ("./z", "Zed", "W7"),
        ("./multi", "M1", None),
        ("./multi", "M2", None),
        ("./inner", None, None),  # a require in an expression binds nothing known
    }
    bindings = {i.binding for i in tags.imports if i.source == "./a"}
    assert bindings == {"W0", "W1", "c", "W2", "default", "W3"}
    # A multi-line destructuring require: its statement starts the import rows.
    assert {i.line for i in tags.imports if i.source == "./multi"} == {7}
    # A require is an import, not a constant definition; other calls still are.
    assert [(t.kind, t.name) for t in tags.tags] == [("constant", "config")]
    assert tags.exports == ()


@pytest.mark.parametrize(
    ("source", "exports"),
    [
        ("export default class Widget {}\n", [("default", "Widget")]),
        ("export default function make() {}\n", [("default", "make")]),
        ("class Widget {}\nexport default Widget;\n", [("default", "Widget")]),
        ("class Widget {}\nexport { Widget as W, Widget };\n", [("W", "Widget")]),
        ("class Widget {}\nexport { Widget as default };\n", [("default", "Widget")]),
        ("class Widget {}\nmodule.exports = Widget;\n", [("default", "Widget")]),
        ("module.exports = class Widget {};\n", [("default", "Widget")]),
        ("class Widget {}\nmodule.exports = { Widget, W: Widget };\n", [("W", "Widget")]),
        ("class Widget {}\nexports.W = Widget;\nexports.Widget = Widget;\n", [("W", "Widget")]),
        ("export default class {}\nexport class Named {}\n", []),
    ],
)
@pytest.mark.parametrize("language", ["javascript", "typescript"])
def test_javascript_exports(language: str, source: str, exports: list[tuple[str, str]]) -> None:
    assert list(extract_tags(source, language).exports) == exports


def test_typescript_export_assignment_and_import_require() -> None:
    tags = extract_tags('import W = require("./w");\nclass A {}\nexport = A;\n', "typescript")
    assert [(i.source, i.name, i.alias) for i in tags.imports] == [("./w", "default", "W")]
    assert tags.exports == (("default", "A"),)


def test_commonjs_definitions() -> None:
    source = (
        "exports.make = function (a) { return a }\n"
        "module.exports.arrow = (b) => b\n"
        "exports.Klass = class Klass { grow() {} }\n"
        "module.exports = class Widget {\n  constructor(size) {}\n}\n"
        "other.exports.x = 1\n"
    )
    got = {(t.kind, t.name, t.parent) for t in extract_tags(source, "javascript").tags}
    assert got == {
        ("function", "make", None),
        ("function", "arrow", None),
        ("class", "Klass", None),
        ("method", "grow", "Klass"),
        ("class", "Widget", None),
        ("method", "constructor", "Widget"),
    }


@pytest.mark.parametrize("language", ["javascript", "typescript"])
def test_members_assigned_at_the_top_level(language: str) -> None:
    source = (
        "const webidl = {}\n"
        "\n"
        "// Throws unless V is an I.\n"
        "webidl.brandCheck = function (V, I) {\n"
        "  return V instanceof I\n"
        "}\n"
        "webidl.util = {}\n"  # not a function: no definition
        "Point.prototype.norm = async () => 1\n"
        "exports.make = function () {}\n"
        "function setup() {\n"
        "  webidl.local = function () {}\n"  # inside a function: not the file's interface
        "}\n"
    )
    tags = extract_tags(source, language).tags
    got = {(t.kind, t.name, t.parent) for t in tags}
    assert got == {
        ("constant", "webidl", None),
        ("method", "brandCheck", "webidl"),
        ("method", "norm", "Point"),
        ("function", "make", None),
        ("function", "setup", None),
    }
    check = next(t for t in tags if t.name == "brandCheck")
    # The doc comment above the statement is the member's; the body ends at its brace.
    assert (check.doc_start, check.doc_end, check.line, check.end) == (2, 2, 3, 5)


def test_python_and_other_languages_have_no_exports() -> None:
    assert extract_tags(PY, "python").exports == ()
    assert extract_tags("package p;\npublic class A {}\n", "java").exports == ()


def test_signature_ends_at_the_colon_even_when_the_body_shares_its_line() -> None:
    text = (
        "class C:\n"
        "    @overload\n"
        "    def f(\n"
        "        self, a: int\n"
        "    ) -> int: ...\n"
        "\n"
        "    def g(self, a):\n"
        "        # a comment before the body\n"
        "        return a\n"
    )
    tags = {t.name: t for t in extract_tags(text, "python").tags}
    assert tags["f"].header_end == 4  # `) -> int: ...`, not the line before it
    assert tags["g"].header_end == 6  # the comment is body, not signature
