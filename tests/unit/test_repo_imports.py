"""Tests for import resolution against a set of workspace paths."""

from __future__ import annotations

import posixpath

import pytest

from lsp_server.repo.imports import resolve_imports
from lsp_server.repo.tags import extract_tags


class Paths:
    """A minimal PathView over a fixed set of display paths."""

    def __init__(self, *paths: str) -> None:
        self.paths = set(paths)

    def has(self, path: str) -> bool:
        return path in self.paths

    def by_basename(self, name: str) -> list[str]:
        return sorted(p for p in self.paths if posixpath.basename(p) == name)

    def files_in_dir(self, folder: str) -> list[str]:
        return sorted(p for p in self.paths if posixpath.dirname(p) == folder)

    def dirs_named(self, name: str) -> list[str]:
        return sorted(
            {
                posixpath.dirname(p)
                for p in self.paths
                if posixpath.basename(posixpath.dirname(p)) == name
            }
        )


def resolve(view: Paths, current: str, language: str, source: str) -> list[tuple[str, str | None]]:
    refs = extract_tags(source, language).imports
    return [(r.path, r.symbol) for r in resolve_imports(view, current, language, refs)]


PY = Paths(
    "pkg/__init__.py", "pkg/a.py", "pkg/sub/__init__.py", "pkg/sub/b.py", "src/lib/c.py", "tool.py"
)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from .a import f", [("pkg/a.py", "f")]),
        ("from . import a", [("pkg/a.py", None)]),
        ("from .sub import b", [("pkg/sub/b.py", None)]),
        ("from .sub import thing", [("pkg/sub/__init__.py", "thing")]),
        ("from ..tool import run", [("tool.py", "run")]),
        ("import pkg.a", [("pkg/a.py", None)]),
        ("from pkg.sub.b import B as BB", [("pkg/sub/b.py", "B")]),
        ("import pkg", [("pkg/__init__.py", None)]),
        ("from lib.c import C", [("src/lib/c.py", "C")]),
        ("import os\nfrom collections import deque", []),
        ("from .missing import x", []),
    ],
)
def test_python(source: str, expected: list[tuple[str, str | None]]) -> None:
    assert resolve(PY, "pkg/main.py", "python", source) == expected


def test_python_never_resolves_to_itself() -> None:
    assert resolve(PY, "pkg/a.py", "python", "from . import a") == []


JS = Paths("src/util.ts", "src/comp/index.tsx", "src/old.js", "src/lib/api.ts")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('import { f } from "./util";', [("src/util.ts", "f")]),
        ('import { f } from "./util.js";', [("src/util.ts", "f")]),
        ('import C from "./comp";', [("src/comp/index.tsx", "default")]),
        ('import * as api from "./lib/api";', [("src/lib/api.ts", None)]),
        ('const o = require("./old");', [("src/old.js", "default")]),
        ('require("./old");', [("src/old.js", None)]),
        ('const { f, g: h } = require("./util");', [("src/util.ts", "f"), ("src/util.ts", "g")]),
        ('export * from "./util";', [("src/util.ts", None)]),
        ('export { f as g } from "./util";', [("src/util.ts", "f")]),
        ('const { Widget } = require("widget-lib");', []),
        ('import React from "react";', []),
        ('import x from "../../outside";', []),
    ],
)
def test_javascript_typescript(source: str, expected: list[tuple[str, str | None]]) -> None:
    assert resolve(JS, "src/main.ts", "typescript", source) == expected


def test_java() -> None:
    view = Paths(
        "src/main/java/com/acme/util/Strings.java",
        "src/main/java/com/acme/util/Nums.java",
        "src/main/java/com/acme/App.java",
    )
    current = "src/main/java/com/acme/App.java"
    assert resolve(view, current, "java", "import com.acme.util.Strings;") == [
        ("src/main/java/com/acme/util/Strings.java", "Strings")
    ]
    assert resolve(view, current, "java", "import static com.acme.util.Nums.max;") == [
        ("src/main/java/com/acme/util/Nums.java", "max")
    ]
    assert sorted(resolve(view, current, "java", "import com.acme.util.*;")) == [
        ("src/main/java/com/acme/util/Nums.java", None),
        ("src/main/java/com/acme/util/Strings.java", None),
    ]
    assert resolve(view, current, "java", "import java.util.List;") == []


def test_go() -> None:
    view = Paths(
        "internal/store/db.go", "internal/store/db_test.go", "internal/store/cache.go", "main.go"
    )
    got = resolve(
        view,
        "main.go",
        "go",
        'package main\nimport (\n "fmt"\n "example.com/app/internal/store"\n)\n',
    )
    assert got == [("internal/store/cache.go", None), ("internal/store/db.go", None)]


def test_rust() -> None:
    view = Paths("src/lib.rs", "src/net/mod.rs", "src/net/tcp.rs", "src/util.rs")
    assert resolve(view, "src/lib.rs", "rust", "mod util;\nmod net;") == [
        ("src/util.rs", None),
        ("src/net/mod.rs", None),
    ]
    assert resolve(view, "src/net/mod.rs", "rust", "mod tcp;") == [("src/net/tcp.rs", None)]
    assert resolve(view, "src/net/tcp.rs", "rust", "use crate::util::{parse, Config as C};") == [
        ("src/util.rs", "parse"),
        ("src/util.rs", "Config"),
    ]
    assert resolve(view, "src/net/tcp.rs", "rust", "use super::Socket;") == [
        ("src/net/mod.rs", "Socket")
    ]
    assert resolve(view, "src/util.rs", "rust", "use std::io::Read;") == []


def test_c_includes() -> None:
    view = Paths("src/a.c", "src/a.h", "include/lib/b.h")
    assert resolve(
        view, "src/a.c", "c", '#include "a.h"\n#include "lib/b.h"\n#include <stdio.h>\n'
    ) == [("src/a.h", None), ("include/lib/b.h", None)]


def test_unknown_language_resolves_nothing() -> None:
    assert resolve(PY, "x.rb", "ruby", "require 'x'") == []


def test_absolute_import_never_names_a_module_inside_a_package() -> None:
    # ``import warnings`` in a package is the standard library's, not ``pkg/warnings.py``
    # (which is ``pkg.warnings``): neither the folder walk nor the suffix fallback take it.
    view = Paths("pkg/__init__.py", "pkg/warnings.py", "pkg/sub/__init__.py", "pkg/sub/m.py")
    assert resolve(view, "pkg/sub/m.py", "python", "import warnings") == []
    assert resolve(view, "pkg/sub/m.py", "python", "from warnings import warn") == []
    assert resolve(view, "pkg/sub/m.py", "python", "import pkg.warnings") == [
        ("pkg/warnings.py", None)
    ]
    # A folder of scripts (no __init__) is its own sys.path root: siblings import directly.
    scripts = Paths("tools/run.py", "tools/helpers.py")
    assert resolve(scripts, "tools/run.py", "python", "from helpers import go") == [
        ("tools/helpers.py", "go")
    ]
