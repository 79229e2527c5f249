"""Tests for the quality benchmark's hole extraction and scoring (bench/holes.py, scoring.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import holes as holes_module
from bench.holes import block_holes, collect_holes, line_holes
from bench.scoring import (
    apply_completion,
    bare_window,
    edit_similarity,
    exact_match,
    first_line,
    leaks_special_token,
    parses_ok,
    percentile,
)
from lsp_server.syntax import count_errors, parse

PY = '''import os


def area(r):
    """Area of a circle."""
    pi = 3.14159
    return pi * r * r


def walk(top):
    for name in os.listdir(top):
        print(name)
'''

JS = """function add(a, b) {
  const total = a + b;
  return total;
}

class Box {
  size() {
    const w = this.w;
    return w * this.h;
  }
}
"""

C = """static inline int twice(int x)
{
\tint y = x * 2;
\treturn y;
}
"""


def test_line_holes_remove_one_statement_line_and_keep_its_indentation() -> None:
    found = line_holes("a.py", PY, "python")
    expected = {"pi = 3.14159", "return pi * r * r", "print(name)"}
    assert {h.expected for h in found} == expected
    for hole in found:
        assert hole.shape == "line"
        line_start = hole.text.rfind("\n", 0, hole.offset) + 1
        # The cursor sits after the kept indentation on an otherwise empty line.
        assert hole.text[line_start : hole.offset].strip() == ""
        assert hole.text[hole.offset : hole.text.find("\n", hole.offset)] == ""
        assert apply_completion(hole.text, hole.offset, hole.expected) == PY


def test_line_holes_skip_docstrings_headers_and_top_level_code() -> None:
    bodies = {h.expected for h in line_holes("a.py", PY, "python")}
    assert not any(b.startswith(('"""', "def ", "import", "for ")) for b in bodies)


@pytest.mark.parametrize(
    ("language", "source", "bodies"),
    [
        (
            "python",
            PY,
            {
                "pi = 3.14159\n    return pi * r * r",
                "for name in os.listdir(top):\n        print(name)",
            },
        ),
        (
            "javascript",
            JS,
            {
                "const total = a + b;\n  return total;",
                "const w = this.w;\n    return w * this.h;",
            },
        ),
        ("c", C, {"int y = x * 2;\n\treturn y;"}),
    ],
)
def test_block_holes_remove_the_body_and_the_file_reassembles(
    language: str, source: str, bodies: set[str]
) -> None:
    found = block_holes(f"a.{language}", source, language)
    assert {h.expected for h in found} == bodies
    for hole in found:
        assert apply_completion(hole.text, hole.offset, hole.expected) == source
        # The docstring stays in a Python hole: it is the function's specification.
        if language == "python":
            assert '"""Area of a circle."""' in hole.text


def test_files_with_syntax_errors_give_no_holes() -> None:
    broken = PY.replace("def walk(top):", "def walk(top:")
    assert line_holes("a.py", broken, "python") == []
    assert block_holes("a.py", broken, "python") == []


def test_collect_holes_is_seeded_and_one_per_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(6):
        (tmp_path / f"m{i}.py").write_text(PY.replace("area", f"area{i}") * 3, encoding="utf-8")
    monkeypatch.setitem(holes_module._SOURCE_ROOTS, "python", (str(tmp_path),))
    monkeypatch.setattr(holes_module, "_MIN_BYTES", 10)
    first = collect_holes("python", "line", 4, seed=3)
    again = collect_holes("python", "line", 4, seed=3)
    other = collect_holes("python", "line", 4, seed=4)
    assert first == again
    assert len(first) == 4
    assert len({h.path for h in first}) == 4
    assert [h.path for h in first] != [h.path for h in other] or first != other


def test_first_line_and_exact_match() -> None:
    assert first_line("a = 1\r\nb = 2") == "a = 1"
    assert first_line("") == ""
    assert exact_match("  return x ", "return x")
    assert not exact_match("return x;", "return x")


def test_edit_similarity() -> None:
    assert edit_similarity("abc", "abc") == 1.0
    assert edit_similarity("", "") == 1.0
    assert edit_similarity("", "abcd") == 0.0
    assert edit_similarity("kitten", "sitting") == pytest.approx(1 - 3 / 7)
    assert edit_similarity("abcd", "abce") == pytest.approx(0.75)


def test_leaked_special_tokens_are_recognised() -> None:
    assert leaks_special_token("x = 1<|endoftext|>")
    assert leaks_special_token("<|fim_middle|>")
    assert leaks_special_token("y<｜fim▁end｜>")
    assert leaks_special_token("<fim_suffix>")
    assert not leaks_special_token("if a < b and c > d: x = a|b")


def test_parses_ok_compares_with_a_baseline() -> None:
    assert parses_ok("def f():\n    return 1\n", "python")
    assert not parses_ok("def f(:\n    return 1\n", "python")
    broken = "def f(:\n    pass\n"
    tree = parse(broken, "python")
    assert tree is not None
    assert parses_ok(broken, "python", count_errors(tree.root_node))
    assert parses_ok("anything at all {", "no-such-grammar")


def test_bare_window_cuts_at_line_boundaries() -> None:
    text = "".join(f"line{i}\n" for i in range(100))
    offset = text.index("line50")
    prefix, suffix = bare_window(text, offset, 30, 20)
    assert prefix.startswith("line") and prefix.endswith("\n")
    assert len(prefix) <= 30
    assert suffix.startswith("line50") and not suffix.endswith("\n")
    assert len(suffix) <= 20
    assert bare_window(text, offset, 10_000, 10_000) == (text[:offset], text[offset:])


def test_percentile_by_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) in (50.0, 51.0)
    assert percentile(values, 0.95) == 95.0
    assert percentile([], 0.5) == 0.0
    assert percentile([7.0], 0.95) == 7.0


JS_WITH_CLOSERS = """\
function pick (a, b) {
  if (a > b) {
    return a
  } else {
    return b
  }
}
"""


def test_line0_holes_take_closers_and_put_the_cursor_at_column_0() -> None:
    from bench.holes import line0_holes

    holes = line0_holes("pick.js", JS_WITH_CLOSERS, "javascript")
    expected = [h.expected for h in holes]
    assert expected == ["if (a > b) {", "return a", "} else {", "return b", "}", "}"]
    for hole in holes:
        assert hole.text[hole.offset - 1] == "\n" and hole.text[hole.offset] == "\n"
        # The document with the line back (indentation included) is the original.
        line = JS_WITH_CLOSERS.split("\n")[hole.text.count("\n", 0, hole.offset)]
        assert hole.text[: hole.offset] + line + hole.text[hole.offset :] == JS_WITH_CLOSERS


def test_the_ledger_counts_wins_and_losses_against_each_variant() -> None:
    from bench.quality import Record, ledger_rows

    def record(pipeline: str, variant: str) -> Record:
        rec = Record(
            "python",
            "line",
            "familiar",
            "f.py:2",
            "f.py",
            "def f():\n    \n",
            13,
            "return 1",
            "return 1",
        )
        rec.answers = {
            "pipeline": {"text": pipeline, "replace": 0, "prompt_tokens": 0, "seconds": 0.0},
            "-kv": {"text": variant, "replace": 0, "prompt_tokens": 0, "seconds": 0.0},
        }
        return rec

    rows = ledger_rows([record("return 1", "return 2"), record("", "return 1")])
    won, lost, up, down, n = rows[("python", "vs variant -kv")]
    assert (won, lost, n) == (1, 1, 2)
    assert (up, down) == (1, 1)
