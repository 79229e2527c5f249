"""Tests for lsp_server.syntax (parsers, incremental documents) and language lookup."""

from __future__ import annotations

import random

import pytest
from tree_sitter import Parser, Point, Tree

from lsp_server import syntax
from lsp_server.languages import LANGUAGES, language_for
from lsp_server.syntax import (
    ParsedDocument,
    byte_offset,
    byte_to_offset,
    count_errors,
    get_parser,
    parse,
    point_at,
)


@pytest.mark.parametrize(
    ("language_id", "expected"),
    [
        ("python", "python"),
        ("javascript", "javascript"),
        ("javascriptreact", "javascript"),
        ("typescript", "typescript"),
        ("typescriptreact", "tsx"),
        ("shellscript", "bash"),
        ("csharp", "csharp"),
        ("cpp", "cpp"),
        ("c", "c"),
        ("go", "go"),
        ("rust", "rust"),
        ("java", "java"),
        ("ruby", "ruby"),
        ("php", "php"),
        ("lua", "lua"),
        ("Python", "python"),
        ("kotlin", "kotlin"),
    ],
)
def test_language_for_maps_lsp_language_ids(language_id: str, expected: str) -> None:
    assert language_for(language_id, None) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/src/a.py", "python"),
        ("/src/a.tsx", "tsx"),
        ("/src/a.ts", "typescript"),
        ("/src/a.mjs", "javascript"),
        ("/src/a.hpp", "cpp"),
        ("/src/a.h", "c"),
        ("/src/a.cs", "csharp"),
        ("/src/a.rb", "ruby"),
        ("/src/a.sh", "bash"),
        ("/src/Makefile", "make"),
        ("/src/Dockerfile", "dockerfile"),
        ("/src/A.JAVA", "java"),
    ],
)
def test_language_for_falls_back_to_the_file_name(path: str, expected: str) -> None:
    assert language_for(None, path) == expected
    # An unknown or generic language id does not hide what the extension says.
    assert language_for("plaintext", path) == expected
    assert language_for("no-such-language", path) == expected


def test_language_id_wins_over_extension() -> None:
    assert language_for("typescriptreact", "/src/a.js") == "tsx"


@pytest.mark.parametrize(
    ("language_id", "path"),
    [
        (None, None),
        ("", ""),
        ("klingon", "/a/b.unknownext"),
        (None, "/a/noext"),
        ("plaintext", None),
    ],
)
def test_language_for_unknown_is_none(language_id: str | None, path: str | None) -> None:
    assert language_for(language_id, path) is None


def test_every_mapped_grammar_loads() -> None:
    names = {spec.grammar for spec in LANGUAGES if spec.extensions or spec.filenames or spec.ids}
    missing = sorted(name for name in names if get_parser(name) is None)
    assert missing == []


def test_get_parser_is_cached_and_unknown_is_none() -> None:
    first = get_parser("python")
    assert isinstance(first, Parser)
    assert get_parser("python") is first
    assert get_parser("no-such-grammar") is None


def test_parse_returns_tree_or_none() -> None:
    tree = parse("def f():\n    return 1\n", "python")
    assert isinstance(tree, Tree)
    assert tree.root_node.type == "module"
    assert not tree.root_node.has_error
    assert parse("anything", None) is None
    assert parse("anything", "no-such-grammar") is None


def test_count_errors_counts_error_and_missing_nodes() -> None:
    ok = parse("x = (1 + 2)\n", "python")
    broken = parse("x = (1 + \n", "python")
    missing = parse("function f() {\n  return 1;\n", "javascript")
    assert ok is not None and broken is not None and missing is not None
    assert count_errors(ok.root_node) == 0
    assert count_errors(broken.root_node) >= 1
    assert count_errors(missing.root_node) >= 1


@pytest.mark.parametrize(
    "text",
    ["plain ascii\nline two", "émoji 😀 here\n中文字符\r\nend", "", "\n\n", "a\r\nb\r\n😀"],
)
def test_byte_offsets_round_trip(text: str) -> None:
    data = text.encode("utf-8")
    for offset in range(len(text) + 1):
        byte = byte_offset(text, offset)
        assert byte == len(text[:offset].encode("utf-8"))
        assert byte_to_offset(text, byte) == offset
        assert byte_to_offset(text, byte, data) == offset


def test_point_at_counts_bytes_in_columns() -> None:
    text = "ab\n😀x\r\n中y"
    assert point_at(text, 0) == Point(0, 0)
    assert point_at(text, 2) == Point(0, 2)
    # 😀 is 4 UTF-8 bytes, 中 is 3.
    assert point_at(text, text.index("x")) == Point(1, 4)
    assert point_at(text, text.index("y")) == Point(2, 3)
    assert point_at(text, len(text) + 10) == Point(2, 4)


def _assert_tree_matches_fresh_parse(doc: ParsedDocument) -> None:
    assert doc.tree is not None
    fresh = parse(doc.text, doc.language)
    assert fresh is not None
    assert str(doc.tree.root_node) == str(fresh.root_node)
    assert doc.tree.root_node.end_byte == len(doc.text.encode("utf-8"))
    assert doc.tree.root_node.end_point == fresh.root_node.end_point


class _RecordingParser:
    """Wraps a real parser and records whether each parse was given an old tree."""

    def __init__(self, real: Parser) -> None:
        self.real = real
        self.old_trees: list[Tree | None] = []

    def parse(self, data: bytes, old_tree: Tree | None = None) -> Tree:
        self.old_trees.append(old_tree)
        if old_tree is None:
            return self.real.parse(data)
        return self.real.parse(data, old_tree)


def test_apply_edit_is_incremental(monkeypatch: pytest.MonkeyPatch) -> None:
    real = get_parser("python")
    assert real is not None
    recorder = _RecordingParser(real)
    monkeypatch.setattr(syntax, "get_parser", lambda language: recorder)
    doc = ParsedDocument("def f():\n    return 1\n", "python")
    old = doc.tree
    assert old is not None
    old_sexp = str(old.root_node)
    one = doc.text.index("1")
    doc.apply_edit(one, one + 1, "2 + 3")
    assert doc.text == "def f():\n    return 2 + 3\n"
    # The second parse got an edited copy of the previous tree, not None.
    assert recorder.old_trees[0] is None
    edited = recorder.old_trees[-1]
    assert edited is not None and edited is not old
    assert edited.root_node.has_changes
    # The tree handed out before the edit still describes the old text.
    assert str(old.root_node) == old_sexp
    assert old.root_node.end_byte == len("def f():\n    return 1\n")
    assert not old.root_node.has_changes
    monkeypatch.undo()
    _assert_tree_matches_fresh_parse(doc)


def test_apply_edit_with_emoji_cjk_and_crlf() -> None:
    text = 'def f():\r\n    s = "😀中文"\r\n    return s\r\n'
    doc = ParsedDocument(text, "python")
    at = doc.text.index("return")
    doc.apply_edit(at, at, "t = '文字😀'\r\n    ")
    _assert_tree_matches_fresh_parse(doc)
    emoji = doc.text.index("😀")
    doc.apply_edit(emoji, emoji + 1, "ok")
    _assert_tree_matches_fresh_parse(doc)
    assert "😀中文" not in doc.text
    start = doc.text.index("s = ")
    doc.apply_edit(start, len(doc.text), "")
    _assert_tree_matches_fresh_parse(doc)


@pytest.mark.parametrize("language", ["python", "javascript", "rust", "go", "c", "ruby"])
def test_random_edits_match_a_fresh_parse(language: str) -> None:
    rng = random.Random(hash(language) & 0xFFFF)
    pieces = ["x", " ", "\n", "(", ")", "{", "}", "😀", "中", "\r\n", "if ", "return ", "'", '"']
    doc = ParsedDocument("start\n", language)
    for _ in range(150):
        start = rng.randint(0, len(doc.text))
        end = min(len(doc.text), start + rng.randint(0, 3))
        new = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 4)))
        expected = doc.text[:start] + new + doc.text[end:]
        doc.apply_edit(start, end, new)
        assert doc.text == expected
    _assert_tree_matches_fresh_parse(doc)


def test_apply_edit_clamps_out_of_range_offsets() -> None:
    doc = ParsedDocument("abc", "python")
    doc.apply_edit(10, 20, "d")
    assert doc.text == "abcd"
    doc.apply_edit(-5, 1, "")
    assert doc.text == "bcd"
    _assert_tree_matches_fresh_parse(doc)


def test_document_without_grammar_tracks_text() -> None:
    doc = ParsedDocument("héllo wörld", None)
    assert doc.tree is None
    doc.apply_edit(6, 11, "there")
    assert doc.text == "héllo there"
    doc.replace_all("new")
    assert doc.text == "new"
    assert doc.tree is None


def test_replace_all_parses_from_scratch() -> None:
    doc = ParsedDocument("x = 1\n", "python")
    doc.replace_all("def g():\n    pass\n")
    _assert_tree_matches_fresh_parse(doc)
    assert doc.byte_offset(4) == 4


def test_large_non_ascii_document_edits() -> None:
    body = "".join(f"def f{i}():\n    return '😀{i}中'\n\n" for i in range(2000))
    doc = ParsedDocument(body, "python")
    middle = doc.text.index("def f1000")
    doc.apply_edit(middle, middle, "x = 1\n")
    tree = doc.tree
    assert tree is not None
    node = tree.root_node.descendant_for_byte_range(
        doc.byte_offset(middle), doc.byte_offset(middle) + 1
    )
    assert node is not None
    assert node.text == b"x"
    assert not tree.root_node.has_error
