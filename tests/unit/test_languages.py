"""The syntax-aware stages together, per language: trigger -> context -> postprocess.

Each case is a document with a cursor mark and a scripted "model output" that runs on
past the end of the body (as small FIM models do); the stages must pick the right
shape, build a context that holds the cursor's surroundings, and cut the output to the
body, with no new syntax errors.
"""

from __future__ import annotations

import pytest

from lsp_server.completion.context import build_context
from lsp_server.completion.postprocess import postprocess
from lsp_server.completion.trigger import decide_shape
from lsp_server.core import Shape
from lsp_server.languages import language_for
from lsp_server.syntax import ParsedDocument, count_errors, parse

CARET = "█"

CASES = [
    (
        "python",
        "a.py",
        "def area(r):\n    █\n\n\ndef main():\n    pass\n",
        "return 3.14 * r * r\n\n\ndef extra():\n    pass\n",
        "return 3.14 * r * r",
    ),
    (
        "javascript",
        "a.js",
        "function add(a, b) {\n  █\n}\n",
        "return a + b;\n}\n\nfunction sub(a, b) {\n  return a - b;\n}\n",
        "return a + b;",
    ),
    (
        "typescriptreact",
        "a.tsx",
        "function View(p: { n: number }) {\n  █\n}\n",
        "return <div>{p.n}</div>;\n}\n",
        "return <div>{p.n}</div>;",
    ),
    (
        "typescript",
        "a.ts",
        "function twice(x: number): number {\n  █\n}\n",
        "return x * 2;\n}\n",
        "return x * 2;",
    ),
    (
        "java",
        "A.java",
        "class A {\n  int twice(int x) {\n    █\n  }\n}\n",
        "return x * 2;\n  }\n\n  int thrice(int x) {\n    return x * 3;\n  }\n",
        "return x * 2;",
    ),
    (
        "go",
        "a.go",
        "package m\n\nfunc twice(x int) int {\n\t█\n}\n",
        "return x * 2\n}\n\nfunc other() {}\n",
        "return x * 2",
    ),
    (
        "rust",
        "a.rs",
        "fn twice(x: i32) -> i32 {\n    █\n}\n",
        "x * 2\n}\n\nfn other() {}\n",
        "x * 2",
    ),
    ("c", "a.c", "int twice(int x) {\n    █\n}\n", "return x * 2;\n}\n", "return x * 2;"),
    ("cpp", "a.cpp", "int twice(int x) {\n    █\n}\n", "return x * 2;\n}\n", "return x * 2;"),
    (
        "csharp",
        "A.cs",
        "class A {\n    int Twice(int x) {\n        █\n    }\n}\n",
        "return x * 2;\n    }\n",
        "return x * 2;",
    ),
    (
        "kotlin",
        "A.kt",
        "class A {\n    fun twice(x: Int): Int {\n        █\n    }\n}\n",
        "return x * 2\n    }\n\n    fun thrice(x: Int): Int = x * 3\n}\n",
        "return x * 2",
    ),
    ("ruby", "a.rb", "def twice(x)\n  █\nend\n", "x * 2\nend\n\ndef other\nend\n", "x * 2"),
    (
        "php",
        "a.php",
        "<?php\nfunction twice($x) {\n    █\n}\n",
        "return $x * 2;\n}\n",
        "return $x * 2;",
    ),
    ("lua", "a.lua", "function twice(x)\n  █\nend\n", "return x * 2\nend\n", "return x * 2"),
    (
        "shellscript",
        "a.sh",
        "twice() {\n  █\n}\n",
        "echo $(( $1 * 2 ))\n}\n\nother() {\n  :\n}\n",
        "echo $(( $1 * 2 ))",
    ),
    ("plaintext", "notes.unknown", "block {\n  █\n}\n", "alpha beta\n}\nmore\n", "alpha beta"),
]


def word_count(text: str) -> int:
    return len(text.split()) + text.count("\n")


@pytest.mark.parametrize(("language_id", "name", "source", "raw", "expected"), CASES)
def test_stages_together(language_id: str, name: str, source: str, raw: str, expected: str) -> None:
    offset = source.index(CARET)
    text = source.replace(CARET, "")
    language = language_for(language_id, f"/w/{name}")
    doc = ParsedDocument(text, language)
    shape = decide_shape(text, offset, language, invoked=False, tree=doc.tree)
    assert shape is Shape.BLOCK
    ctx = build_context(
        text,
        offset,
        language=language,
        path=f"/w/{name}",
        shape=shape,
        budget_tokens=512,
        count_tokens=word_count,
        tree=doc.tree,
    )
    assert ctx.prefix + ctx.suffix == text
    result = postprocess(raw, ctx)
    assert result is not None
    assert result.text == expected
    assert result.replace_chars == 0
    if language is not None:
        before = parse(text, language)
        after = parse(text[:offset] + result.text + text[offset:], language)
        assert before is not None and after is not None
        assert count_errors(after.root_node) <= count_errors(before.root_node)


def test_typing_through_a_document_keeps_the_tree_in_sync() -> None:
    doc = ParsedDocument("def f(a):\n    \n", "python")
    cursor = len("def f(a):\n    ")
    for ch in "return a + 1":
        doc.apply_edit(cursor, cursor, ch)
        cursor += 1
        shape = decide_shape(doc.text, cursor, "python", invoked=False, tree=doc.tree)
        # Mid-word positions are NONE, everything else a single line.
        assert shape in (Shape.LINE, Shape.NONE)
    fresh = parse(doc.text, "python")
    assert fresh is not None and doc.tree is not None
    assert str(doc.tree.root_node) == str(fresh.root_node)
    assert not doc.tree.root_node.has_error


_LONG = "x = [" + ", ".join(str(i) for i in range(3000)) + "]"
BAD_INPUTS = [
    # (name, languageId, path, source with caret, model output, expected completion or None)
    (
        "syntax errors",
        "python",
        "a.py",
        "def f(:\n    return )\n\ndef g(x):\n    █\n",
        "return x + 1\n\ndef h():\n",
        "return x + 1",
    ),
    ("mixed tabs and spaces", "python", "a.py", "if a:\n\tif b:\n\t    █\n", "c = 1\n", "c = 1"),
    (
        "CRLF",
        "javascript",
        "a.js",
        "function f(a) {\r\n  █\r\n}\r\n",
        "return a;\r\n}\r\n",
        "return a;",
    ),
    ("a line over 10,000 chars", "python", "a.py", _LONG + "\ny = █\n", "len(x)\n", "len(x)"),
    (
        "non-UTF-8 bytes",
        "python",
        "a.py",
        b"s = '\xff\xfe caf\xe9'\ndef f():\n    \xe9 = 1\n    \n".decode(
            "utf-8", "surrogateescape"
        ).replace("    \n", "    █\n"),
        "return s\n",
        "return s",
    ),
    ("emoji and CJK", "python", "a.py", 's = "😀中文"\nt = █\n', 's + "字"\n', 's + "字"'),
    ("unknown language", "klingon", "a.tlh", "qaStaH █\n", "nuq\n", "nuq"),
    ("unknown language, no path", "", "", "    █\n", "   \n", None),
]


@pytest.mark.parametrize(
    ("name", "language_id", "path", "source", "raw", "expected"),
    BAD_INPUTS,
    ids=[case[0] for case in BAD_INPUTS],
)
def test_bad_input_gives_a_sensible_completion_or_none(
    name: str, language_id: str, path: str, source: str, raw: str, expected: str | None
) -> None:
    from lsp_server.backends.templates import QWEN
    from lsp_server.completion.prompt import render_fim_prompt

    offset = source.index(CARET)
    text = source.replace(CARET, "")
    language = language_for(language_id, path or None)
    doc = ParsedDocument(text, language)
    # An edit and its undo leave the tree as a fresh parse would.
    doc.apply_edit(offset, offset, "z")
    doc.apply_edit(offset, offset + 1, "")
    assert doc.text == text
    shape = decide_shape(text, offset, language, invoked=True, tree=doc.tree)
    assert shape is not Shape.NONE
    ctx = build_context(
        text,
        offset,
        language=language,
        path=path or None,
        shape=shape,
        budget_tokens=256,
        count_tokens=word_count,
        tree=doc.tree,
    )
    render_fim_prompt(QWEN, ctx).render()
    result = postprocess(raw, ctx)
    if expected is None:
        assert result is None
    else:
        assert result is not None
        assert result.text.replace("\r\n", "\n") == expected
