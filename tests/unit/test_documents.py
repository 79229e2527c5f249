"""Tests for lsp_server.documents: the server's store of open documents."""

from __future__ import annotations

import pytest

from lsp_server import documents
from lsp_server.documents import DocumentStore, uri_to_path

URI = "file:///w/a.py"


def test_incremental_changes_keep_text_and_tree_in_step() -> None:
    store = DocumentStore()
    store.open(URI, "def f():\n    pass\n", "python", 1)
    doc = store.change(URI, 2, [((1, 4, 1, 8), "return 1")])
    assert doc is not None and doc.version == 2
    assert doc.text == "def f():\n    return 1\n"
    assert doc.parsed is not None and doc.parsed.tree is not None
    assert "return_statement" in str(doc.parsed.tree.root_node)


def test_a_document_that_grew_too_large_is_parsed_again_once_it_shrinks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(documents, "MAX_PARSE_CHARS", 40)
    store = DocumentStore()
    store.open(URI, "x = 1\n", "python", 1)
    assert store.get(URI).parsed is not None
    big = store.change(URI, 2, [((1, 0, 1, 0), "y = 2\n" * 10)])
    assert big is not None and big.parsed is None  # too large: generic rules only
    small = store.change(URI, 3, [((1, 0, 11, 0), "")])
    assert small is not None and small.text == "x = 1\n"
    assert small.parsed is not None and small.parsed.tree is not None
    assert small.parsed.text == small.text


def test_a_document_without_a_grammar_is_never_parsed() -> None:
    store = DocumentStore()
    store.open("file:///w/notes.unknownext", "hello", "plaintext-xyz", 1)
    doc = store.change("file:///w/notes.unknownext", 2, [((0, 5, 0, 5), " world")])
    assert doc is not None and doc.text == "hello world" and doc.parsed is None


def test_changes_to_a_document_that_is_not_open_are_ignored() -> None:
    assert DocumentStore().change("file:///w/never.py", 1, [(None, "x")]) is None


def test_uri_to_path() -> None:
    assert uri_to_path("file:///w/a%20b.py") == "/w/a b.py"
    assert uri_to_path("untitled:Untitled-1") is None
