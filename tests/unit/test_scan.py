"""Tests for the shared lexical scan of brackets, strings and line comments."""

from __future__ import annotations

from lsp_server.completion.scan import CodeScan


def test_brackets_inside_strings_and_after_comments_are_skipped() -> None:
    text = 'f("(", x[1]) # g(\ny = {"\\"]": 2}'
    tokens = [tok for _, tok in CodeScan(text, ("#",))]
    assert tokens == ["(", "[", "]", ")", "#", "{", "}"]


def test_a_string_ends_at_the_line_end_but_a_backtick_string_runs_on() -> None:
    assert [t for _, t in CodeScan('"abc\n(', ())] == ["("]
    assert [t for _, t in CodeScan("`abc\n(", ())] == []


def test_open_quote_is_reported_after_the_scan() -> None:
    scan = CodeScan('print("hello', ("#",))
    assert [t for _, t in scan] == ["("]
    assert scan.open_quote == '"'


def test_quotes_and_marker_filter_are_the_callers() -> None:
    # Without ' as a quote, a Rust lifetime does not open a string.
    scan = CodeScan("fn f<'a>(x: &'a str) // c", ("//",), quotes='"`')
    assert [t for _, t in scan] == ["(", ")", "//"]
    assert scan.open_quote is None
    # A rejected marker neither counts nor hides the rest of the line.
    scan = CodeScan("a#b # c", ("#",), is_comment=lambda text, i: text[i - 1] == " ")
    assert [(i, t) for i, t in scan] == [(4, "#")]
