"""Tests for lsp_server.completion.trigger: the completion shape at the cursor."""

from __future__ import annotations

import pytest

from lsp_server.completion.trigger import LINE_TOKEN_CAP, decide_shape, max_tokens_for
from lsp_server.core import Shape
from lsp_server.syntax import parse

CARET = "█"


def shape(source: str, language: str | None, *, invoked: bool = False, tree: bool = True) -> Shape:
    """Decide the shape at the caret mark in ``source`` (the mark is removed)."""
    offset = source.index(CARET)
    text = source.replace(CARET, "", 1)
    parsed = parse(text, language) if tree else None
    return decide_shape(text, offset, language, invoked=invoked, tree=parsed)


BLOCK_CASES = [
    ("python", "def f(x):█\n"),
    ("python", "class A:\n    def f(self):\n        █\n"),
    ("python", "if x:\n    █"),
    ("javascript", "function f() {█\n"),
    ("javascript", "function f() {\n  █\n}\n"),
    ("typescript", "class A {\n  run(): void {█\n  }\n}\n"),
    ("java", "class A {\n  void f() {\n    █\n  }\n}\n"),
    ("go", "func f() {█\n}\n"),
    ("rust", "fn main() {\n    █\n}\n"),
    ("c", "int main(void) {█\n"),
    ("cpp", "namespace n {\n█\n}\n"),
    ("csharp", "class A {\n    void F() {█\n    }\n}\n"),
    ("ruby", "def f█\n"),
    ("ruby", "items.each do |x|█\n"),
    ("php", "<?php\nfunction f() {█\n"),
    ("lua", "function f()█\n"),
    ("lua", "if x then█\n"),
    ("bash", "if [ -f x ]; then█\n"),
    ("bash", "for f in *; do█\n"),
    ("bash", "case $x in█\n"),
    (None, "anything {█\n"),
    (None, "key:█\n"),
]


@pytest.mark.parametrize(("language", "source"), BLOCK_CASES)
def test_body_openers_and_blank_lines_are_block(language: str | None, source: str) -> None:
    assert shape(source, language) is Shape.BLOCK
    # The line-only fallback agrees with the tree.
    assert shape(source, language, tree=False) is Shape.BLOCK


LINE_CASES = [
    ("python", "x = foo(█)\n"),
    ("python", "x = █\n"),
    ("python", "return a +█\n"),
    ("python", "foo(\n    █\n)\n"),
    ("javascript", "const x = [1, █];\n"),
    ("javascript", "if (█) {\n}\n"),
    ("typescript", "let x: number = █\n"),
    ("java", "int x = compute(█);\n"),
    ("go", "x := f(█)\n"),
    ("rust", "let v = vec![█];\n"),
    ("c", 'printf("%d", █);\n'),
    ("cpp", "auto x = std::max(a, █);\n"),
    ("csharp", "var x = new List<int>(█);\n"),
    ("ruby", "puts █\n"),
    ("php", "<?php\n$x = strlen(█);\n"),
    ("lua", "local x = █\n"),
    ("bash", "echo █\n"),
    (None, "foo = bar(█)\n"),
]


@pytest.mark.parametrize(("language", "source"), LINE_CASES)
def test_expressions_and_text_after_the_cursor_are_line(language: str | None, source: str) -> None:
    assert shape(source, language) is Shape.LINE


def test_blank_line_inside_an_argument_list_is_line_with_a_tree() -> None:
    source = "result = compute(\n    first,\n    █\n)\n"
    assert shape(source, "python") is Shape.LINE
    # A function body inside an argument list is a block again.
    js = "run(function () {\n  █\n});\n"
    assert shape(js, "javascript") is Shape.BLOCK


@pytest.mark.parametrize(
    ("language", "source"),
    [
        ("python", "value = comp█uted + 1\n"),
        ("javascript", "const x = fo█o();\n"),
        ("go", "x := ab█c\n"),
        (None, "some_na█me\n"),
    ],
)
def test_inside_an_identifier_is_none_even_when_invoked(language: str | None, source: str) -> None:
    assert shape(source, language) is Shape.NONE
    assert shape(source, language, invoked=True) is Shape.NONE


def test_code_right_after_the_cursor_is_none_unless_invoked() -> None:
    assert shape("x = █value\n", "python") is Shape.NONE
    assert shape("x = █value\n", "python", invoked=True) is Shape.LINE


COMMENT_AND_STRING_CASES = [
    ("python", "# a comment █\n"),
    ("python", 'x = "some █ text"\n'),
    ("python", 'def f():\n    """Doc █\n    more."""\n'),
    ("python", "x = 'unclosed █\n"),
    ("javascript", "// note █\n"),
    ("javascript", "/* block █ */\n"),
    ("javascript", "const s = `tmpl █`;\n"),
    ("typescript", "// note █\n"),
    ("java", 'String s = "a█";\n'),
    ("go", "// note █\n"),
    ("go", "s := `raw █`\n"),
    ("rust", "// note █\n"),
    ("rust", 'let s = "a █";\n'),
    ("c", "/* █ */\n"),
    ("cpp", "// note █\n"),
    ("csharp", 'var s = "a █";\n'),
    ("ruby", "# note █\n"),
    ("ruby", 'x = "a █"\n'),
    ("php", "<?php\n// note █\n"),
    ("php", "<?php\n# note █\n"),
    ("lua", "-- note █\n"),
    ("lua", 'local s = "a █"\n'),
    ("bash", "# note █\n"),
    ("bash", 'echo "a █"\n'),
]


@pytest.mark.parametrize(("language", "source"), COMMENT_AND_STRING_CASES)
def test_comments_and_strings_are_none_unless_invoked(language: str, source: str) -> None:
    assert shape(source, language) is Shape.NONE
    assert shape(source, language, invoked=True) is not Shape.NONE


def test_after_a_closed_string_or_block_comment_is_code() -> None:
    assert shape('x = "abc"█\n', "python") is Shape.LINE
    assert shape("/* done */█\n", "c") is Shape.LINE
    assert shape("x = 1  # note\ny = █\n", "python") is Shape.LINE


def test_interpolations_inside_strings_are_code() -> None:
    assert shape('s = f"{x█}"\n', "python") is Shape.LINE
    assert shape("const s = `a ${x█}`;\n", "javascript") is Shape.LINE


def test_unknown_language_uses_generic_rules() -> None:
    assert shape("thing = █\n", None) is Shape.LINE
    assert shape("    █\n", None) is Shape.BLOCK
    assert shape("x = 'open █\n", None) is Shape.NONE
    assert shape("// note █\n", None) is Shape.NONE
    assert shape("a#b█\n", None) is Shape.LINE


@pytest.mark.parametrize("language", ["python", "javascript", None])
def test_edges_of_the_file(language: str | None) -> None:
    assert decide_shape("", 0, language, invoked=False, tree=parse("", language)) is Shape.BLOCK
    text = "x = 1\n"
    assert decide_shape(text, 0, language, invoked=False) is Shape.NONE
    assert decide_shape(text, 0, language, invoked=True) is Shape.LINE
    assert decide_shape(text, len(text), language, invoked=False) is Shape.BLOCK
    # Offsets past either end are clamped, never an error.
    assert decide_shape(text, 10_000, language, invoked=False) is Shape.BLOCK
    assert decide_shape(text, -3, language, invoked=True) is Shape.LINE


def test_crlf_line_endings() -> None:
    text = "def f():\r\n    return 1\r\n"
    at_colon = text.index("\r\n")
    assert decide_shape(text, at_colon, "python", invoked=False, tree=parse(text, "python")) is (
        Shape.BLOCK
    )
    at_one = text.index("1") + 1
    assert decide_shape(text, at_one, "python", invoked=False) is Shape.LINE


def test_emoji_and_cjk_before_the_cursor() -> None:
    source = 's = "😀中文"\nt = █\n'
    assert shape(source, "python") is Shape.LINE
    assert shape('s = "😀中█文"\n', "python") is Shape.NONE


def test_very_long_line() -> None:
    long_line = "x = [" + ", ".join(str(i) for i in range(3000)) + "]"
    assert len(long_line) > 10_000
    source = long_line + "\ny = █\n"
    assert shape(source, "python") is Shape.LINE


def test_file_with_syntax_errors() -> None:
    source = "def f(:\n    return )\n\nclass █\n"
    assert shape(source, "python") is Shape.LINE
    assert shape("def f(:\n    █\n", "python") is Shape.BLOCK


def test_mixed_tabs_and_spaces() -> None:
    assert shape("if x:\n\t  █\n", "python") is Shape.BLOCK
    assert shape("if x:\n\t  y = █\n", "python") is Shape.LINE


def test_max_tokens_for_caps_by_shape() -> None:
    assert max_tokens_for(Shape.NONE, 256) == 0
    assert max_tokens_for(Shape.LINE, 256) == LINE_TOKEN_CAP
    assert max_tokens_for(Shape.LINE, 16) == 16
    assert max_tokens_for(Shape.BLOCK, 256) == 256
    assert max_tokens_for(Shape.BLOCK, 0) == 1


BETWEEN_CASES = [
    ("python", "def f(x):\n    a = 1\n    █\n    return a\n"),
    ("javascript", "function f() {\n  const a = 1;\n  █\n  return a;\n}\n"),
    ("typescript", "function f(): number {\n  let a = 1;\n\n  █\n\n  return a;\n}\n"),
    ("java", "class A {\n  int f() {\n    int a = 1;\n    █\n    return a;\n  }\n}\n"),
    ("go", "func f() int {\n\ta := 1\n\t█\n\treturn a\n}\n"),
    ("rust", "fn f() -> i32 {\n    let a = 1;\n    █\n    a\n}\n"),
    ("c", "int f(void) {\n    int a = 1;\n    █\n    return a;\n}\n"),
    ("cpp", "int f() {\n    auto a = 1;\n    █\n    return a;\n}\n"),
    (
        "csharp",
        "class A {\n    int F() {\n        var a = 1;\n        █\n        return a;\n    }\n}\n",
    ),
    ("ruby", "def f\n  a = 1\n  █\n  a\nend\n"),
    ("php", "<?php\nfunction f() {\n    $a = 1;\n    █\n    return $a;\n}\n"),
    ("lua", "function f()\n  local a = 1\n  █\n  return a\nend\n"),
    ("bash", "f() {\n  a=1\n  █\n  echo $a\n}\n"),
    (None, "step one\n  █\n  step two\n"),
]


@pytest.mark.parametrize(("language", "source"), BETWEEN_CASES)
def test_blank_line_between_statements_of_a_block_is_line(
    language: str | None, source: str
) -> None:
    assert shape(source, language) is Shape.LINE
    assert shape(source, language, tree=False) is Shape.LINE


@pytest.mark.parametrize(
    ("language", "source"),
    [
        # The next line dedents: the block may go on for several lines.
        ("python", "def f(x):\n    a = 1\n    █\n\nprint(f(1))\n"),
        # The next line closes the block.
        ("javascript", "function f() {\n  const a = 1;\n  █\n}\n"),
        ("ruby", "if x\n  a = 1\n  █\nend\n"),
        ("python", "try:\n    a()\n█\nexcept E:\n    pass\n"),
        # The next line starts a new definition at the cursor's level.
        ("python", "class A:\n    x = 1\n    █\n    def f(self):\n        pass\n"),
        ("rust", "impl A {\n    █\n    pub fn f(&self) {}\n}\n"),
        ("java", "class A {\n  █\n  public void f() {}\n}\n"),
        # Nothing after the cursor.
        ("python", "a = 1\n█"),
    ],
)
def test_blank_line_before_a_block_end_or_definition_stays_block(
    language: str, source: str
) -> None:
    assert shape(source, language) is Shape.BLOCK
