"""Tests for the TypeScript / JavaScript cross-file hole finder (bench/crossfile_holes.py)."""

from __future__ import annotations

from pathlib import Path

from bench.crossfile_holes import find_script_holes, require_refs, script_code_rows
from lsp_server.repo.index import WorkspaceIndex
from lsp_server.syntax import parse

SHAPES_TS = """export class Foo {
  size = 1;
}

export function makeBar(n: number): number {
  return n * 2;
}

export interface Options {
  verbose: boolean;
}
"""

MAIN_TS = """import { Foo, makeBar as bar } from "./shapes";
import type { Options } from "./shapes";

// A comment, not a use: no mention of the names here.
const registry = { Foo: 1, other: 2 };
export function describe(x: { Foo: number }, opts: Options) {
  const label = `size ${registry.Foo}`;
  const made = new Foo();
  return bar(made.size) + x.Foo;
}
"""


def _project(tmp_path: Path, files: dict[str, str]) -> tuple[WorkspaceIndex, Path]:
    root = tmp_path / "proj"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    index = WorkspaceIndex([tmp_path])
    index.build()
    return index, root


def test_ts_property_and_key_uses_are_not_holes(tmp_path: Path) -> None:
    index, root = _project(tmp_path, {"src/shapes.ts": SHAPES_TS, "src/main.ts": MAIN_TS})
    holes = find_script_holes(index, "proj", root, per_file=5, language="typescript")
    by_name = {h.name: h for h in holes if h.rel.endswith("main.ts")}
    # ``Foo`` appears first as an object key, a type's member and a property in a
    # template: other things of that name. Its first real use is the hole.
    assert (by_name["Foo"].row, by_name["Foo"].target) == (7, "const made = new Foo();")
    # ``Options`` is first used as a parameter's type; ``bar`` (makeBar's alias) in a call.
    assert by_name["Options"].target == (
        "export function describe(x: { Foo: number }, opts: Options) {"
    )
    assert by_name["bar"].target == "return bar(made.size) + x.Foo;"
    assert by_name["bar"].language == "typescript"
    # The definition file itself imports nothing: no holes there.
    assert all(h.rel.endswith("main.ts") for h in holes)


def test_ts_first_real_use_after_member_access(tmp_path: Path) -> None:
    main = (
        'import { Foo } from "./shapes";\n'
        "const a = other.Foo;\n"
        "const b = new Foo();\n"
        "export { a, b };\n"
    )
    index, root = _project(tmp_path, {"shapes.ts": SHAPES_TS, "main.ts": main})
    holes = find_script_holes(index, "proj", root, per_file=1, language="typescript")
    # ``other.Foo`` on row 1 is a property of something else; row 2 is the first use.
    assert [(h.row, h.name, h.target) for h in holes] == [(2, "Foo", "const b = new Foo();")]


def test_declaration_files_and_unresolved_names_are_not_holes(tmp_path: Path) -> None:
    user = (
        'import { Foo } from "./shapes";\nimport { X } from "lib";\nexport const f = new Foo();\n'
    )
    index, root = _project(
        tmp_path,
        {"shapes.ts": SHAPES_TS, "types.d.ts": user, "user.ts": user},
    )
    holes = find_script_holes(index, "proj", root, per_file=5, language="typescript")
    # X comes from a package outside the workspace; types.d.ts is context, not a hole file.
    assert [(h.rel.rsplit("/", 1)[-1], h.name) for h in holes] == [("user.ts", "Foo")]


def test_code_rows_skip_strings_members_and_keys() -> None:
    text = 'const s = "Foo";\nx.Foo;\ny = { Foo: 1 };\nlet t: N.Foo;\nz = `${Foo}`;\n'
    tree = parse(text, "typescript")
    assert tree is not None
    assert script_code_rows(tree.root_node, "Foo") == {4}


def test_commonjs_require_destructuring(tmp_path: Path) -> None:
    lib = "function load(p) {\n  return p;\n}\nclass Store {}\nmodule.exports = { load, Store };\n"
    main = (
        "const { load, Store: S } = require('./lib');\n"
        "const store = {}.load;\n"
        "const data = load('x');\n"
        "module.exports = new S(data);\n"
    )
    tree = parse(main, "javascript")
    assert tree is not None
    refs = require_refs(tree.root_node)
    assert [(r.source, r.name, r.alias) for r in refs] == [
        ("./lib", "load", None),
        ("./lib", "Store", "S"),
    ]
    index, root = _project(tmp_path, {"lib.js": lib, "main.js": main})
    holes = find_script_holes(index, "proj", root, per_file=5, language="javascript")
    assert [(h.row, h.name) for h in holes] == [(2, "load"), (3, "S")]


def test_mention_in_a_comment_or_string_disqualifies_the_name(tmp_path: Path) -> None:
    main = (
        'import { Foo, makeBar } from "./shapes";\n'
        "// Foo is the shape we build.\n"
        'const name = "makeBar";\n'
        "export const made = [new Foo(), makeBar(2)];\n"
    )
    index, root = _project(tmp_path, {"shapes.ts": SHAPES_TS, "main.ts": main})
    assert find_script_holes(index, "proj", root, per_file=5, language="typescript") == []


def test_defines_name_tells_a_definition_from_a_mention() -> None:
    from bench.crossfile import defines_name

    assert defines_name("x = 1\nclass Converter(BaseConverter):\n    pass", "Converter")
    assert defines_name("export type SchemaObject = {", "SchemaObject")
    assert defines_name("ASGIApp = Callable[[Scope], None]", "ASGIApp")
    assert not defines_name("x = Converter()\ndef f(c: Converter): ...", "Converter")
    assert not defines_name("class Converters:", "Converter")
