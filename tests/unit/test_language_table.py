"""The language table (lsp_server/languages.py): consistent, complete, and read by all.

Also the proof that adding a language is one entry plus one tag query: Kotlin was added
that way, and here its definitions are indexed and its files reach repository context.
"""

from __future__ import annotations

import fnmatch
import importlib.resources
import typing
from pathlib import Path

import pytest

from lsp_server.languages import (
    BRACE_STUB,
    LANGUAGES,
    PYTHON_STUB,
    WATCHED_FILES_GLOB,
    ImportStyle,
    comment_marker,
    language_for,
    line_comment_markers,
    spec_for,
)
from lsp_server.repo import imports as imports_module
from lsp_server.repo.context import RepoContext
from lsp_server.repo.index import WorkspaceIndex
from lsp_server.repo.tags import extract_tags, has_tag_query
from lsp_server.repo.walk import index_language


def _all(field: str) -> list[str]:
    return [value for spec in LANGUAGES for value in getattr(spec, field)]


@pytest.mark.parametrize("field", ["extensions", "filenames", "ids"])
def test_each_name_maps_to_one_language(field: str) -> None:
    values = _all(field)
    assert len(values) == len(set(values)), sorted(v for v in values if values.count(v) > 1)
    assert all(v == v.lower() for v in values)


def test_each_grammar_has_one_entry_and_extensions_have_a_dot() -> None:
    grammars = [spec.grammar for spec in LANGUAGES]
    assert len(grammars) == len(set(grammars))
    assert all(e.startswith(".") and len(e) > 1 for e in _all("extensions"))
    assert all(spec.line_comments for spec in LANGUAGES)
    assert {spec.stub for spec in LANGUAGES} <= {"", PYTHON_STUB, BRACE_STUB}


def test_every_tag_query_exists_compiles_and_is_used() -> None:
    named = {spec.tag_query for spec in LANGUAGES if spec.tag_query}
    for spec in LANGUAGES:
        if spec.tag_query:
            assert has_tag_query(spec.grammar), spec.grammar
    folder = importlib.resources.files("lsp_server.repo").joinpath("queries")
    files = {p.name[:-4] for p in folder.iterdir() if p.name.endswith("-tags.scm")}
    assert files == named


def test_every_import_style_has_a_resolver() -> None:
    styles = set(typing.get_args(ImportStyle))
    assert set(imports_module._RESOLVERS) == styles
    assert {spec.imports for spec in LANGUAGES if spec.imports} == styles


def test_watched_files_glob_covers_exactly_the_indexed_extensions() -> None:
    listed = set(WATCHED_FILES_GLOB.removeprefix("**/*.{").removesuffix("}").split(","))
    indexed = {e[1:] for e in _all("extensions") if index_language(f"a{e}")}
    assert listed == indexed
    assert {"py", "ts", "go", "kt", "rb"} <= listed
    assert not listed & {"json", "md", "yaml", "html"}
    assert fnmatch.fnmatch("src/app/Main.kt", "*." + "kt")


@pytest.mark.parametrize(
    ("path", "language", "marker"),
    [
        ("a/b.py", None, "#"),
        ("x.ts", None, "//"),
        ("init.lua", None, "--"),
        (None, "python", "#"),
        ("noext", None, "//"),
        ("C:\\src\\run.sh", None, "#"),
        ("tasks.rake", None, "#"),
        ("Makefile", None, "#"),
        ("core.clj", None, ";"),
        ("Main.kt", None, "//"),
        (None, "no-such-language", "//"),
    ],
)
def test_comment_marker(path: str | None, language: str | None, marker: str) -> None:
    assert comment_marker(path, language) == marker


def test_line_comment_markers_of_known_unknown_and_no_language() -> None:
    assert line_comment_markers("php") == ("//", "#")
    assert line_comment_markers("sql") == ("--",)
    assert line_comment_markers("no-such-language") == ("//",)
    assert line_comment_markers(None) == ("#", "//", "--")


# --- Kotlin: added as one table entry plus queries/kotlin-tags.scm ------------------------

SHAPES = """package geometry

/** The area of a width x height rectangle. */
fun rectangleArea(width: Double, height: Double): Double {
    return width * height
}

const val UNIT = 1.0

class Circle(val radius: Double) {
    fun area(): Double {
        return 3.14159 * radius * radius
    }
}

object Registry {
    fun register(circle: Circle) {}
}

typealias Area = Double
"""

MAIN = """package geometry

import kotlin.math.PI as Pi

fun floorArea(width: Double, height: Double, radius: Double): Double {
    val rug = Circle(radius)
    val area = rectangleArea(width, height) - rug.area()
    {cursor}
}
""".replace("{cursor}", "")


def test_kotlin_is_recognised() -> None:
    assert language_for("kotlin", None) == "kotlin"
    assert language_for(None, "src/Main.kt") == "kotlin"
    assert language_for(None, "build.gradle.kts") == "kotlin"
    spec = spec_for("kotlin")
    assert spec is not None and spec.stub == BRACE_STUB and spec.code


def test_kotlin_tags() -> None:
    tags = extract_tags(SHAPES, "kotlin")
    found = {(t.name, t.kind, t.parent) for t in tags.tags}
    assert found == {
        ("rectangleArea", "function", None),
        ("UNIT", "constant", None),
        ("Circle", "class", None),
        ("area", "method", "Circle"),
        ("Registry", "class", None),
        ("register", "method", "Registry"),
        ("Area", "type", None),
    }
    area = next(t for t in tags.tags if t.name == "rectangleArea")
    assert (area.line, area.header_end, area.end) == (3, 3, 5)
    assert tags.package == "geometry"
    main = extract_tags(MAIN, "kotlin")
    assert [(r.source, r.alias) for r in main.imports] == [("kotlin.math.PI", "Pi")]


def test_kotlin_project_is_indexed_and_feeds_repository_context(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "Shapes.kt").write_text(SHAPES)
    (src / "Main.kt").write_text(MAIN)
    index = WorkspaceIndex([tmp_path])
    stats = index.build()
    assert stats.files == 2
    tags = index.entry_tags("src/Shapes.kt")
    assert tags is not None
    assert {"rectangleArea", "Circle", "area"} <= {t.name for t in tags.tags}
    offset = MAIN.index("    \n}") + 4
    files = (
        RepoContext(index)
        .select(str(src / "Main.kt"), MAIN, offset, "kotlin", 400, lambda s: len(s) // 3 + 1)
        .files
    )
    assert [path for path, _ in files] == ["src/Shapes.kt"]
    assert "fun rectangleArea(width: Double, height: Double): Double {" in files[0][1]
