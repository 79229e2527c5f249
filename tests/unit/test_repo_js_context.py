"""Repository context for JavaScript / TypeScript imports: every way of importing a
class (named, aliased, default, through an ``index`` file's re-exports, CommonJS
``require``) must put that class's definition in front of the prompt."""

from __future__ import annotations

from pathlib import Path

import pytest

from lsp_server.repo.context import RepoContext
from lsp_server.repo.index import WorkspaceIndex
from lsp_server.syntax import count_errors, parse

FILLER_TS = "\n".join(
    f"export function filler{i}(a: number): number {{\n  return a + {i};\n}}\n" for i in range(150)
)
"""Enough code around the class that its file goes in neither whole nor as an outline:
only the located definition brings ``class Widget`` into the block."""
FILLER_JS = (
    "\n".join(f"function filler{i}(a) {{\n  return a + {i};\n}}\n" for i in range(150))
    + "\nmodule.exports.fillers = [filler0];\n"
)

CLASS_TS = (
    "class Widget {\n"
    "  constructor(public size: number) {}\n"
    "  grow(by: number): Widget { return new Widget(this.size + by); }\n"
    "}\n"
)
CLASS_JS = (
    "class Widget {\n"
    "  constructor(size) { this.size = size }\n"
    "  grow(by) { return new Widget(this.size + by) }\n"
    "}\n"
)

# (defining file's tail after the filler, index file or None, import statement, local name)
TS_CASES: dict[str, tuple[str, str | None, str, str]] = {
    "named": ("export " + CLASS_TS, None, 'import { Widget } from "./a";', "Widget"),
    "aliased": ("export " + CLASS_TS, None, 'import { Widget as W } from "./a";', "W"),
    "default class": (
        "export default " + CLASS_TS,
        None,
        'import Widget from "./a";',
        "Widget",
    ),
    "default class, other local name": (
        "export default " + CLASS_TS,
        None,
        'import Thing from "./a";',
        "Thing",
    ),
    "default identifier": (
        CLASS_TS + "export default Widget;\n",
        None,
        'import Widget from "./a";',
        "Widget",
    ),
    "index export star": (
        "export " + CLASS_TS,
        'export * from "./a";\n',
        'import { Widget } from "./lib";',
        "Widget",
    ),
    "index export named": (
        "export " + CLASS_TS,
        'export { Widget } from "./a";\n',
        'import { Widget } from "./lib/index";',
        "Widget",
    ),
    "index export aliased": (
        "export " + CLASS_TS,
        'export { Widget as W } from "./a";\n',
        'import { W } from "./lib";',
        "W",
    ),
    "index export of a default": (
        "export default " + CLASS_TS,
        'export { default as Widget } from "./a";\n',
        'import { Widget } from "./lib";',
        "Widget",
    ),
    "index local export alias": (
        "export " + CLASS_TS,
        'import { Widget } from "./a";\nexport { Widget as W };\n',
        'import { W } from "./lib";',
        "W",
    ),
    "namespace member": ("export " + CLASS_TS, None, 'import * as lib from "./a";', "lib.Widget"),
    "import require": (CLASS_TS + "export = Widget;\n", None, 'import W = require("./a");', "W"),
}

JS_CASES: dict[str, tuple[str, str | None, str, str]] = {
    "destructured require": (
        CLASS_JS + "module.exports = { Widget };\n",
        None,
        "const { Widget } = require('./a')",
        "Widget",
    ),
    "destructured require, aliased": (
        CLASS_JS + "module.exports = { Widget };\n",
        None,
        "const { Widget: W } = require('./a')",
        "W",
    ),
    "destructured require of an aliased export": (
        CLASS_JS + "module.exports = { W: Widget };\n",
        None,
        "const { W } = require('./a')",
        "W",
    ),
    "require member": (
        CLASS_JS + "exports.Widget = Widget;\n",
        None,
        "const W = require('./a').Widget",
        "W",
    ),
    "whole-module require": (
        CLASS_JS + "module.exports = Widget;\n",
        None,
        "const Widget = require('./a.js')",
        "Widget",
    ),
    "whole-module require of a class expression": (
        "module.exports = " + CLASS_JS,
        None,
        "const Widget = require('./a')",
        "Widget",
    ),
    "whole-module require, member": (
        CLASS_JS + "exports.Widget = Widget;\n",
        None,
        "const lib = require('./a')",
        "lib.Widget",
    ),
    "require through an index": (
        CLASS_JS + "module.exports = { Widget };\n",
        "const { Widget } = require('./a');\nmodule.exports = { Widget };\n",
        "const { Widget } = require('./lib')",
        "Widget",
    ),
    "ES default import": (
        "export default " + CLASS_JS,
        None,
        'import Widget from "./a";',
        "Widget",
    ),
    "ES default import of a CommonJS module": (
        CLASS_JS + "module.exports = Widget;\n",
        None,
        'import Widget from "./a";',
        "Widget",
    ),
}


def count(text: str) -> int:
    """A stand-in tokenizer: about four characters per token."""
    return len(text) // 4 + 1


def select(root: Path, files: dict[str, str], current: str, language: str) -> dict[str, str]:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    index = WorkspaceIndex([root])
    index.build()
    text = files[current]
    got = RepoContext(index).select(str(root / current), text, len(text), language, 800, count)
    return dict(got.files)


def workspace(case: tuple[str, str | None, str, str], ext: str) -> tuple[dict[str, str], str]:
    tail, index_text, statement, local = case
    filler = FILLER_TS if ext == "ts" else FILLER_JS
    # With an index file, the defining file sits next to it in ``lib/``.
    folder = "lib/" if index_text is not None else ""
    files = {f"{folder}a.{ext}": filler + "\n" + tail}
    if index_text is not None:
        files[f"lib/index.{ext}"] = index_text
    semi = ";" if ext == "ts" else ""
    files[f"main.{ext}"] = f"{statement}\n\nconst w = new {local}(3){semi}\nw."
    return files, f"{folder}a.{ext}"


@pytest.mark.parametrize("case", sorted(TS_CASES))
def test_typescript_imports_bring_the_class_definition(tmp_path: Path, case: str) -> None:
    files, defining = workspace(TS_CASES[case], "ts")
    got = select(tmp_path, files, "main.ts", "typescript")
    assert defining in got, got
    block = got[defining]
    assert "class Widget {" in block and "constructor(public size: number)" in block
    assert "filler" not in block  # the definition, not the file's outline


@pytest.mark.parametrize("case", sorted(JS_CASES))
def test_javascript_imports_bring_the_class_definition(tmp_path: Path, case: str) -> None:
    files, defining = workspace(JS_CASES[case], "js")
    got = select(tmp_path, files, "main.js", "javascript")
    assert defining in got, got
    block = got[defining]
    assert "class Widget {" in block and "constructor(size)" in block
    assert "filler" not in block


def test_members_of_a_commonjs_module_object(tmp_path: Path) -> None:
    # ``module.exports = { … }`` names no definition: ``util.helper`` is the file's own
    # top-level ``helper``.
    util = FILLER_JS + "\nfunction helper(x, y) {\n  return x * y\n}\nmodule.exports = { helper }\n"
    main = "const util = require('./util')\n\nconst z = util.helper(2, 3)\nutil."
    got = select(tmp_path, {"util.js": util, "main.js": main}, "main.js", "javascript")
    assert "function helper(x, y) {" in got.get("util.js", ""), got


def test_an_object_built_up_by_assignments_shows_its_members(tmp_path: Path) -> None:
    # ``const webidl = {}`` alone says nothing; its members are assigned below it.
    members = "".join(
        f"webidl.check{k} = function (value{k}, options) {{\n  return value{k}\n}}\n\n"
        for k in range(40)
    )
    lib = FILLER_JS + "\nconst webidl = {}\n\n" + members + "module.exports = { webidl }\n"
    main = "const { webidl } = require('./webidl')\n\nfunction f (v) {\n  "
    got = select(tmp_path, {"webidl.js": lib, "main.js": main}, "main.js", "javascript")
    block = got.get("webidl.js", "")
    assert block.startswith("const webidl = {}\n\nwebidl.check0 = function (value0, options)")
    assert "webidl.check1 = function (value1, options) { /* ... */ }" in block
    # Capped like a class (24 lines), the rest said to be left out; never twice.
    assert "webidl.check39" not in block and "// ..." in block
    assert block.count("webidl.check1 = ") == 1


def test_a_default_member_is_looked_up_in_the_default_class(tmp_path: Path) -> None:
    a = FILLER_TS + "\nexport default class Widget {\n  static make(n: number): Widget {\n"
    a += "    return new Widget();\n  }\n}\n"
    main = 'import Widget from "./a";\n\nconst w = Widget.make(3);\n'
    got = select(tmp_path, {"a.ts": a, "main.ts": main}, "main.ts", "typescript")
    assert "static make(n: number): Widget {" in got.get("a.ts", ""), got


@pytest.mark.parametrize(
    ("statement", "language", "ext"),
    [
        ("const { Widget } = require('widget-lib')", "javascript", "js"),
        ("const Widget = require('widget-lib')", "javascript", "js"),
        ('import Widget from "widget-lib";', "typescript", "ts"),
        ('export * from "widget-lib";', "typescript", "ts"),
    ],
)
def test_a_package_import_selects_nothing(
    tmp_path: Path, statement: str, language: str, ext: str
) -> None:
    # A package from node_modules (not indexed) resolves to nothing, and a workspace
    # file with nothing in common is no candidate either.
    filler = FILLER_TS if ext == "ts" else FILLER_JS
    files = {
        f"node_modules/widget-lib/index.{ext}": "export " + CLASS_TS,
        f"util.{ext}": filler,
        f"main.{ext}": f"{statement}\n\nconst w = new Widget(3)\nw.",
    }
    assert select(tmp_path, files, f"main.{ext}", language) == {}


FETCHER_JS = (
    FILLER_JS
    + """
class Fetcher {
  constructor (spec, opts) {
    this.spec = spec
    this.opts = opts
  }

  // the resolved URL
  resolve () {
    return this.spec
  }

  packument () {
    throw new Error('not implemented')
  }
}

module.exports = Fetcher
"""
)


@pytest.mark.parametrize("ext", ["js", "ts"])
def test_a_class_with_bodies_left_out_is_still_code(tmp_path: Path, ext: str) -> None:
    # ``resolve () {`` straight followed by ``packument () {`` is broken code the model may
    # imitate: each left-out body reads ``{ /* ... */ }`` and the class keeps its ``}``.
    main = "const Fetcher = require('./fetcher')\n\nconst f = new Fetcher(1)\nf."
    got = select(tmp_path, {f"fetcher.{ext}": FETCHER_JS, f"main.{ext}": main}, f"main.{ext}", ext)
    shown = got.get(f"fetcher.{ext}", "")
    assert "  constructor (spec, opts) { /* ... */ }" in shown, shown
    assert "  // the resolved URL\n  resolve () { /* ... */ }" in shown, shown
    assert "  packument () { /* ... */ }\n}" in shown, shown
    language = "javascript" if ext == "js" else "typescript"
    tree = parse(shown, language)
    assert tree is not None and count_errors(tree.root_node) == 0, shown
