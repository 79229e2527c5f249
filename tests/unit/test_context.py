"""Tests for lsp_server.completion.context: the token-budgeted prefix/suffix window."""

from __future__ import annotations

import pytest

from lsp_server import tokens
from lsp_server.completion.context import build_context
from lsp_server.core import FimContext, Shape
from lsp_server.syntax import parse
from lsp_server.tokens import cached_count


class WordCounter:
    """A deterministic stand-in tokenizer: one token per word or symbol run, plus one
    per line break. Records every call so tests can check how it is used."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, text: str) -> int:
        self.calls.append(text)
        return len(text.split()) + text.count("\n")


def ctx_for(
    text: str,
    offset: int,
    language: str | None,
    budget: int,
    *,
    counter: WordCounter | None = None,
    shape: Shape = Shape.BLOCK,
    use_tree: bool = True,
) -> FimContext:
    return build_context(
        text,
        offset,
        language=language,
        path="/p/file",
        shape=shape,
        budget_tokens=budget,
        count_tokens=counter or WordCounter(),
        tree=parse(text, language) if use_tree else None,
    )


def cost(text: str) -> int:
    """Per-line cost as build_context measures it."""
    return sum(WordCounter()(line) for line in text.splitlines(keepends=True))


def test_small_file_fits_whole() -> None:
    text = "import os\n\ndef f(x):\n    return x\n\nprint(f(1))\n"
    offset = text.index("return x") + len("return")
    ctx = ctx_for(text, offset, "python", 1000)
    assert ctx.prefix == text[:offset]
    assert ctx.suffix == text[offset:]
    assert ctx.language == "python"
    assert ctx.path == "/p/file"
    assert ctx.shape is Shape.BLOCK
    assert ctx.indent == "    "


def _long_python(n_before: int, n_after: int) -> tuple[str, int]:
    before = "".join(f"value_{i} = compute({i}, {i + 1})\n" for i in range(n_before))
    after = "".join(f"other_{i} = compute({i})\n" for i in range(n_after))
    text = before + "result = \n" + after
    return text, len(before) + len("result = ")


@pytest.mark.parametrize("use_tree", [True, False])
def test_budget_is_respected_and_split_75_25(use_tree: bool) -> None:
    text, offset = _long_python(400, 400)
    ctx = ctx_for(text, offset, "python", 400, use_tree=use_tree)
    total = cost(ctx.prefix) + cost(ctx.suffix)
    assert total <= 400
    # Both sides have plenty of text: the prefix gets about three quarters.
    assert 0.6 * 400 <= cost(ctx.prefix) <= 0.75 * 400 + 5
    assert 0.15 * 400 <= cost(ctx.suffix) <= 0.25 * 400 + 5
    # Windows are cut at line boundaries and stay contiguous around the cursor.
    assert text.endswith(ctx.suffix.split("\n", 1)[1]) or ctx.suffix.endswith("\n")
    assert ctx.prefix.endswith("result = ")
    assert ctx.prefix.startswith("value_")
    assert text[:offset].endswith(ctx.prefix)
    assert text[offset:].startswith(ctx.suffix)


def test_unused_suffix_budget_goes_to_the_prefix() -> None:
    text, offset = _long_python(400, 2)
    ctx = ctx_for(text, offset, "python", 400)
    assert ctx.suffix == text[offset:]
    assert cost(ctx.prefix) > 0.75 * 400
    assert cost(ctx.prefix) + cost(ctx.suffix) <= 400


def test_unused_prefix_budget_goes_to_the_suffix() -> None:
    text, offset = _long_python(2, 400)
    ctx = ctx_for(text, offset, "python", 400)
    assert ctx.prefix == text[:offset]
    assert cost(ctx.suffix) > 0.25 * 400
    assert cost(ctx.prefix) + cost(ctx.suffix) <= 400


def test_counts_whole_lines_and_caches_them() -> None:
    text, offset = _long_python(300, 300)
    counter = WordCounter()
    ctx_for(text, offset, "python", 300, counter=counter)
    assert counter.calls, "the tokenizer must be used"
    # Whole lines only (the cursor line's halves aside), never single characters.
    full_lines = set(text.splitlines(keepends=True))
    partial = [c for c in counter.calls if c not in full_lines]
    assert len(partial) <= 2
    assert all(len(c) > 1 or c == "\n" for c in counter.calls)
    # The second request on the same document hits the cache.
    first_calls = len(counter.calls)
    ctx_for(text, offset, "python", 300, counter=counter)
    assert len(counter.calls) == first_calls


def test_cached_count_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "_CACHE_SIZE", 10)
    counter = WordCounter()
    for i in range(50):
        assert cached_count(counter, f"line {i}\n") == 3
    cache = tokens.token_cache(counter)
    assert cache is not None
    assert 0 < len(cache) <= 10
    assert "line 49\n" in cache
    assert "line 0\n" not in cache


def test_cache_does_not_keep_the_tokenizer_owner_alive() -> None:
    import gc
    import weakref

    class Backend:
        def count_tokens(self, text: str) -> int:
            return len(text)

    backend = Backend()
    assert cached_count(backend.count_tokens, "abc") == 3
    ref = weakref.ref(backend)
    del backend
    gc.collect()
    assert ref() is None


def test_scope_headers_are_kept_when_the_window_drops_them() -> None:
    body = "".join(f"        step_{i} = run({i})\n" for i in range(300))
    text = (
        "import os\n\n\nclass Worker(Base):\n    '''Doc.'''\n\n"
        "    def process(\n        self,\n        items: list[int],\n    ) -> None:\n"
        + body
        + "        \n"
        + "        done = True\n"
    )
    offset = text.index("        \n        done") + 8
    ctx = ctx_for(text, offset, "python", 200)
    lines = ctx.prefix.split("\n")
    assert lines[0] == "class Worker(Base):"
    # The multi-line signature is kept whole (it ends at the line before the body).
    assert lines[1:5] == [
        "    def process(",
        "        self,",
        "        items: list[int],",
        "    ) -> None:",
    ]
    assert "import os" not in ctx.prefix
    assert "step_0 " not in ctx.prefix
    assert ctx.prefix.endswith("        ")
    assert cost(ctx.prefix) + cost(ctx.suffix) <= 200


@pytest.mark.parametrize(
    ("language", "header", "line", "footer"),
    [
        (
            "javascript",
            "class Store {\n  load(key) {\n",
            "    const v{i} = key + {i};\n",
            "  }\n}\n",
        ),
        (
            "typescript",
            "class Store {\n  load(key: string): void {\n",
            "    let v{i} = {i};\n",
            "  }\n}\n",
        ),
        ("java", "class Store {\n  void load() {\n", "    int v{i} = {i};\n", "  }\n}\n"),
        ("go", "func load() {\n", "\tv{i} := {i}\n", "}\n"),
        ("rust", "impl Store {\n    fn load(&self) {\n", "        let v{i} = {i};\n", "    }\n}\n"),
        ("c", "int load(void) {\n", "    int v{i} = {i};\n", "}\n"),
        ("cpp", "namespace app {\nint load() {\n", "    int v{i} = {i};\n", "}\n}\n"),
        ("csharp", "class Store {\n    void Load() {\n", "        var v{i} = {i};\n", "    }\n}\n"),
        ("ruby", "class Store\n  def load\n", "    v{i} = {i}\n", "  end\nend\n"),
        ("php", "<?php\nclass Store {\n  function load() {\n", "    $v{i} = {i};\n", "  }\n}\n"),
        ("lua", "function load()\n", "  local v{i} = {i}\n", "end\n"),
        ("bash", "load() {\n", "  v{i}={i}\n", "}\n"),
    ],
)
def test_scope_headers_in_many_languages(
    language: str, header: str, line: str, footer: str
) -> None:
    body = "".join(line.replace("{i}", str(i)) for i in range(200))
    text = header + body + footer
    offset = text.index(line.replace("{i}", "150"))
    ctx = ctx_for(text, offset, language, 120)
    first_header_line = header.splitlines()[-1]
    assert first_header_line in ctx.prefix.split("\n")[: len(header.splitlines())]
    assert line.replace("{i}", "0") not in ctx.prefix
    assert cost(ctx.prefix) + cost(ctx.suffix) <= 120


def test_headers_without_a_tree_come_from_indentation() -> None:
    body = "".join(f"        item_{i} = {i}\n" for i in range(200))
    text = "section one:\n    part two:\n" + body
    offset = text.index("        item_150")
    ctx = ctx_for(text, offset, None, 80, use_tree=False)
    assert ctx.prefix.startswith("section one:\n    part two:\n")
    assert "item_0 " not in ctx.prefix


def test_window_starts_at_a_statement_boundary() -> None:
    # Each statement spans four lines; the window must not open in the middle of one.
    stmt = "call_{i}(\n    first_argument,\n    second_argument,\n)\n"
    text = "".join(stmt.replace("{i}", str(i)) for i in range(200)) + "x = \n"
    offset = len(text) - 1
    for budget in (101, 102, 103, 104, 150, 173):
        ctx = ctx_for(text, offset, "python", budget)
        assert ctx.prefix.startswith("call_"), (budget, ctx.prefix[:40])


def test_suffix_ends_at_a_statement_boundary() -> None:
    stmt = "call_{i}(\n    first_argument,\n    second_argument,\n)\n"
    text = "x = \n" + "".join(stmt.replace("{i}", str(i)) for i in range(200))
    for budget in (101, 202, 303):
        ctx = ctx_for(text, 4, "python", budget)
        assert ctx.suffix.endswith(")\n"), (budget, ctx.suffix[-40:])


def test_over_long_line_is_cut_inside() -> None:
    long_line = "values = [" + ", ".join(str(i) for i in range(5000)) + "]"
    assert len(long_line) > 10_000
    text = long_line + "\n"
    offset = len(long_line) - 1  # just before the closing bracket
    ctx = ctx_for(text, offset, "python", 200)
    assert text[:offset].endswith(ctx.prefix)
    assert text[offset:].startswith(ctx.suffix)
    assert 0 < WordCounter()(ctx.prefix) <= 150
    assert WordCounter()(ctx.prefix) + WordCounter()(ctx.suffix) <= 200


@pytest.mark.parametrize("language", ["python", None])
def test_edges_and_empty_file(language: str | None) -> None:
    empty = ctx_for("", 0, language, 100)
    assert (empty.prefix, empty.suffix, empty.indent) == ("", "", "")
    text = "a = 1\nb = 2\n"
    start = ctx_for(text, 0, language, 100)
    assert (start.prefix, start.suffix) == ("", text)
    end = ctx_for(text, len(text), language, 100)
    assert (end.prefix, end.suffix) == (text, "")
    clamped = ctx_for(text, 10_000, language, 100)
    assert clamped.prefix == text
    zero = ctx_for(text, 3, language, 0)
    assert (zero.prefix, zero.suffix) == ("", "")


def test_crlf_emoji_and_cjk_are_kept_verbatim() -> None:
    text = "def f():\r\n    s = '😀中文'\r\n    \r\n    return s\r\n"
    offset = text.index("    \r\n    return") + 4
    ctx = ctx_for(text, offset, "python", 1000)
    assert ctx.prefix + ctx.suffix == text
    assert ctx.indent == "    "


def test_mixed_tabs_and_spaces_indent() -> None:
    text = "if x:\n\t  y = 1\n"
    ctx = ctx_for(text, text.index("y"), "python", 100)
    assert ctx.indent == "\t  "


def test_file_with_syntax_errors() -> None:
    text = "def broken(:\n" + "".join(f"    x{i} = (\n" for i in range(300)) + "    \n"
    ctx = ctx_for(text, len(text) - 1, "python", 100)
    assert ctx.prefix.endswith("    ")
    assert cost(ctx.prefix) + cost(ctx.suffix) <= 100


def test_five_thousand_line_file_costs_a_window_not_the_file() -> None:
    lines = []
    for i in range(1000):
        lines += [
            f"def function_{i}(a, b):",
            f"    '''Doc {i} 😀.'''",
            f"    total = a + b * {i}",
            "    return total",
            "",
        ]
    text = "\n".join(lines) + "\n"
    offset = text.index("    return total", len(text) // 2)
    tree = parse(text, "python")
    counter = WordCounter()
    build_context(
        text, offset, language="python", path=None, shape=Shape.BLOCK,
        budget_tokens=1024, count_tokens=counter, tree=tree,
    )  # fmt: skip
    # What keeps a request in a huge file fast (bench/latency.py measures it): line
    # token counts are remembered, so the next request at the same place counts nothing
    # again, and the work is bounded by the budget, not by the file.
    first_calls = len(counter.calls)
    assert 0 < first_calls < 500, first_calls  # about a window of lines, not 5,000
    counter.calls.clear()
    again = build_context(
        text, offset, language="python", path=None, shape=Shape.BLOCK,
        budget_tokens=1024, count_tokens=counter, tree=tree,
    )  # fmt: skip
    assert counter.calls == []
    assert "    return total" in again.prefix + again.suffix
