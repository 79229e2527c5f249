"""Map a file's imports to files of the workspace, per language.

Paths here are the index's display paths (posix, relative to the workspace root; with
several roots, prefixed by the root's folder name). Resolution only asks a
:class:`PathView` whether paths exist, so it is pure and cheap, and works the same for
the files on disk and for open buffers.

Supported: Python (absolute and relative, packages and ``__init__``), JavaScript /
TypeScript (relative specifiers, extensions, ``index`` files, ``.js`` naming a ``.ts``
source), Java (package + class, wildcards, static imports), Go (package folders, found
by the longest matching suffix of the import path), Rust (``mod name;``,
``use crate::`` / ``self::`` / ``super::``), C/C++ (``#include "…"``, relative to the
file, then by path suffix). Other languages resolve nothing and rely on similarity.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from lsp_server.languages import ImportStyle, spec_for
from lsp_server.repo.tags import ImportRef

__all__ = ["PathView", "ResolvedImport", "resolve_imports"]


class PathView(Protocol):
    """What import resolution needs to know about the workspace."""

    def has(self, path: str) -> bool:
        """True when ``path`` (a display path) is an indexed file."""
        ...

    def by_basename(self, name: str) -> list[str]:
        """Display paths of the indexed files called ``name``."""
        ...

    def files_in_dir(self, folder: str) -> list[str]:
        """Display paths of the indexed files directly inside ``folder``."""
        ...

    def dirs_named(self, name: str) -> list[str]:
        """Display paths of the folders (holding indexed files) called ``name``."""
        ...


@dataclass(frozen=True, slots=True)
class ResolvedImport:
    """One import of the current file, mapped to a workspace file."""

    ref: ImportRef
    path: str
    """Display path of the file that defines what is imported."""
    symbol: str | None = None
    """The name imported from ``path``; None when the import binds the whole module,
    whose members are then reached as ``binding.member`` (or, for a star import, by
    their own names). JavaScript: ``default`` names the module's default export (for a
    CommonJS module, ``module.exports``)."""


_JS_EXTS = (".ts", ".tsx", ".d.ts", ".js", ".jsx", ".mjs", ".cjs", ".mts", ".cts")


def _norm(path: str) -> str | None:
    """Normalised posix path, or None when it climbs above the workspace."""
    normal = posixpath.normpath(path)
    if normal.startswith("../") or normal == ".." or normal.startswith("/"):
        return None
    return "" if normal == "." else normal


def _join(folder: str, *parts: str) -> str:
    return posixpath.join(folder, *parts) if folder else posixpath.join(*parts)


def _by_suffix(
    view: PathView, suffix: str, near: str, accept: Callable[[str], bool] | None = None
) -> str | None:
    """The indexed file whose path ends with ``/suffix`` (or is it), nearest to ``near``.

    ``accept``, when given, is asked about each match's folder above the suffix.
    """
    name = posixpath.basename(suffix)
    matches = [p for p in view.by_basename(name) if p == suffix or p.endswith("/" + suffix)]
    if accept is not None:
        matches = [p for p in matches if accept(p[: len(p) - len(suffix)].rstrip("/"))]
    if not matches:
        return None
    return min(matches, key=lambda p: (-_common_prefix(p, near), len(p), p))


def _common_prefix(a: str, b: str) -> int:
    return len(posixpath.commonpath([a, b]).split("/")) if a and b else 0


def _ancestors(folder: str) -> list[str]:
    """``folder`` and each folder above it, deepest first, ending with ''."""
    out = []
    while folder:
        out.append(folder)
        folder = posixpath.dirname(folder)
    out.append("")
    return out


# --- Python ------------------------------------------------------------------------------


def _py_module(view: PathView, base: str) -> str | None:
    for candidate in (base + ".py", base + ".pyi", _join(base, "__init__.py")):
        if view.has(candidate):
            return candidate
    return None


def _is_package(view: PathView, folder: str) -> bool:
    """True when ``folder`` is a regular Python package (it has an ``__init__``)."""
    return bool(folder) and (
        view.has(_join(folder, "__init__.py")) or view.has(_join(folder, "__init__.pyi"))
    )


def _py_absolute_bases(view: PathView, current: str, module: str) -> list[str]:
    # An absolute import starts at a sys.path root: a folder that is not itself inside a
    # package (``import warnings`` in ``pkg/sub/m.py`` is never ``pkg/warnings.py``).
    folder = posixpath.dirname(current)
    memo = view.roots if isinstance(view, _Memo) else {}
    roots = memo.get(folder)
    if roots is None:
        roots = [f for f in _ancestors(folder) if not _is_package(view, f)]
        memo[folder] = roots
    rel = module.replace(".", "/")
    return [*(_join(root, rel) for root in roots), _join("src", rel)]


def _resolve_python(view: PathView, current: str, ref: ImportRef) -> ResolvedImport | None:
    source = ref.source
    if source.startswith("."):
        dots = len(source) - len(source.lstrip("."))
        folder = posixpath.dirname(current)
        for _ in range(dots - 1):
            folder = posixpath.dirname(folder)
        module = source[dots:]
        base = _join(folder, module.replace(".", "/")) if module else folder
        bases = [base]
    else:
        bases = _py_absolute_bases(view, current, source)
    name = ref.name if ref.name and ref.name != "*" else None
    for base in bases:
        if name and "." not in name:
            # ``from pkg import mod`` imports a submodule when one exists.
            sub = _py_module(view, _join(base, name))
            if sub is not None:
                return ResolvedImport(ref, sub, None)
        target = _py_module(view, base) if base else None
        if target is not None:
            return ResolvedImport(ref, target, name)
    if source.startswith("."):
        return None
    rel = source.replace(".", "/")

    def accept(root: str) -> bool:
        return not _is_package(view, root)

    found = _by_suffix(view, rel + ".py", current, accept)
    if found is None:
        # A package: looked up by its folder's name (every package has an ``__init__.py``,
        # so a lookup by that basename would go through all of them).
        folders = [
            d
            for d in view.dirs_named(posixpath.basename(rel))
            if (d == rel or d.endswith("/" + rel))
            and view.has(_join(d, "__init__.py"))
            and accept(d[: len(d) - len(rel)].rstrip("/"))
        ]
        if folders:
            best = min(folders, key=lambda d: (-_common_prefix(d, current), len(d), d))
            found = _join(best, "__init__.py")
    return ResolvedImport(ref, found, name) if found is not None else None


# --- JavaScript / TypeScript -------------------------------------------------------------


def _resolve_js(view: PathView, current: str, ref: ImportRef) -> ResolvedImport | None:
    source = ref.source
    if not source.startswith("."):
        return None  # a package from node_modules (not indexed) or a bundler alias
    base = _norm(_join(posixpath.dirname(current), source))
    if base is None:
        return None
    stem, ext = posixpath.splitext(base)
    candidates = [base]
    if ext in (".js", ".jsx", ".mjs", ".cjs"):
        # TypeScript sources import each other by their compiled ``.js`` names.
        candidates += [stem + e for e in (".ts", ".tsx", ".mts", ".cts")]
    candidates += [base + e for e in _JS_EXTS]
    candidates += [_join(base, "index" + e) for e in _JS_EXTS]
    symbol = ref.name if ref.name and ref.name != "*" else None
    for candidate in candidates:
        if candidate and view.has(candidate):
            return ResolvedImport(ref, candidate, symbol)
    return None


# --- Java --------------------------------------------------------------------------------


def _resolve_java(view: PathView, current: str, ref: ImportRef) -> list[ResolvedImport]:
    parts = ref.source.split(".")
    if ref.name == "*":
        folder = "/".join(parts)
        out = []
        for candidate in view.dirs_named(parts[-1]):
            if candidate == folder or candidate.endswith("/" + folder):
                out += [
                    ResolvedImport(ref, p, None)
                    for p in view.files_in_dir(candidate)
                    if p.endswith(".java")
                ]
                break
        return out
    # ``a.b.C`` is a class file; ``a.b.C.member`` (static import) a member of one.
    for cut in (len(parts), len(parts) - 1):
        if cut < 1:
            continue
        found = _by_suffix(view, "/".join(parts[:cut]) + ".java", current)
        if found is not None:
            symbol = parts[cut] if cut < len(parts) else parts[-1]
            return [ResolvedImport(ref, found, symbol)]
    return []


# --- Go ----------------------------------------------------------------------------------


def _resolve_go(view: PathView, current: str, ref: ImportRef) -> list[ResolvedImport]:
    parts = [p for p in ref.source.split("/") if p]
    if len(parts) < 2 and (not parts or "." not in parts[0]):
        return []  # the standard library ("fmt", "os")
    # The longest suffix of the import path that names a folder of the workspace is the
    # package (the module path in go.mod is a prefix we do not need to know).
    named = view.dirs_named(parts[-1])
    for keep in range(len(parts), 0, -1):
        suffix = "/".join(parts[-keep:])
        folders = [d for d in named if d == suffix or d.endswith("/" + suffix)]
        if folders:
            folder = min(folders, key=lambda d: (-_common_prefix(d, current), len(d)))
            files = [
                p
                for p in view.files_in_dir(folder)
                if p.endswith(".go") and not p.endswith("_test.go")
            ]
            return [ResolvedImport(ref, p, None) for p in sorted(files)]
    return []


# --- Rust --------------------------------------------------------------------------------


def _rust_module_dir(current: str) -> str:
    """Folder where the submodules of the module defined by ``current`` live."""
    folder = posixpath.dirname(current)
    name = posixpath.basename(current)
    if name in ("mod.rs", "lib.rs", "main.rs"):
        return folder
    return _join(folder, posixpath.splitext(name)[0])


def _rust_file(view: PathView, base: str) -> str | None:
    for candidate in (base + ".rs", _join(base, "mod.rs")):
        if view.has(candidate):
            return candidate
    return None


def _rust_crate_root(view: PathView, current: str) -> str | None:
    for folder in _ancestors(posixpath.dirname(current)):
        if view.has(_join(folder, "lib.rs")) or view.has(_join(folder, "main.rs")):
            return folder
    return None


def _resolve_rust(view: PathView, current: str, ref: ImportRef) -> ResolvedImport | None:
    if ref.kind == "module":
        target = _rust_file(view, _join(_rust_module_dir(current), ref.source))
        return ResolvedImport(ref, target, None) if target else None
    segments = ref.source.split("::")
    head = segments[0]
    if head == "crate":
        folder = _rust_crate_root(view, current)
        rest = segments[1:]
    elif head == "self":
        folder = _rust_module_dir(current)
        rest = segments[1:]
    elif head == "super":
        folder = posixpath.dirname(_rust_module_dir(current))
        rest = segments[1:]
        while rest and rest[0] == "super":
            folder = posixpath.dirname(folder)
            rest = rest[1:]
    else:
        return None  # another crate
    if folder is None or not rest:
        return None
    for cut in range(len(rest), 0, -1):
        module = [s for s in rest[:cut] if s != "*"]
        if not module:
            continue
        target = _rust_file(view, _join(folder, *module))
        if target is not None:
            symbol = rest[cut] if cut < len(rest) and rest[cut] != "*" else None
            return ResolvedImport(ref, target, symbol)
    # ``use crate::Name`` names an item of the crate root itself.
    for root_file in ("lib.rs", "main.rs", "mod.rs"):
        candidate = _join(folder, root_file)
        if view.has(candidate) and candidate != current:
            return ResolvedImport(ref, candidate, rest[0] if rest[0] != "*" else None)
    return None


# --- C / C++ -----------------------------------------------------------------------------


def _resolve_include(view: PathView, current: str, ref: ImportRef) -> ResolvedImport | None:
    local = _norm(_join(posixpath.dirname(current), ref.source))
    if local and view.has(local):
        return ResolvedImport(ref, local, None)
    suffix = _norm(ref.source)
    if not suffix:
        return None
    found = _by_suffix(view, suffix, current)
    return ResolvedImport(ref, found, None) if found else None


# --- dispatch ----------------------------------------------------------------------------

_Resolver = Callable[[PathView, str, ImportRef], "ResolvedImport | list[ResolvedImport] | None"]

_RESOLVERS: dict[ImportStyle, _Resolver] = {
    "python": _resolve_python,
    "ecma": _resolve_js,
    "java": _resolve_java,
    "go": _resolve_go,
    "rust": _resolve_rust,
    "c": _resolve_include,
}
"""The resolver of each import style the language table names (``LanguageSpec.imports``)."""


class _Memo:
    """A PathView whose ``has`` answers are remembered for one resolution pass (the same
    package ``__init__`` files and candidate paths are asked about for every import)."""

    def __init__(self, view: PathView) -> None:
        self.view = view
        self._has: dict[str, bool] = {}
        self.roots: dict[str, list[str]] = {}
        """Python: the possible sys.path roots above a folder."""

    def has(self, path: str) -> bool:
        """As ``PathView.has``, memoised."""
        found = self._has.get(path)
        if found is None:
            found = self._has[path] = self.view.has(path)
        return found

    def by_basename(self, name: str) -> list[str]:
        """As ``PathView.by_basename``."""
        return self.view.by_basename(name)

    def files_in_dir(self, folder: str) -> list[str]:
        """As ``PathView.files_in_dir``."""
        return self.view.files_in_dir(folder)

    def dirs_named(self, name: str) -> list[str]:
        """As ``PathView.dirs_named``."""
        return self.view.dirs_named(name)


def resolve_imports(
    view: PathView, current: str, language: str | None, imports: tuple[ImportRef, ...]
) -> list[ResolvedImport]:
    """Map ``imports`` of the file ``current`` (display path) to workspace files.

    The result keeps the imports' order; unresolved imports (standard library,
    third-party packages, other languages) are left out; the current file never
    resolves to itself.
    """
    spec = spec_for(language)
    resolver = _RESOLVERS.get(spec.imports) if spec is not None and spec.imports else None
    if resolver is None:
        return []
    view = _Memo(view)
    out: list[ResolvedImport] = []
    for ref in imports:
        found = resolver(view, current, ref)
        items = found if isinstance(found, list) else [found] if found is not None else []
        out.extend(item for item in items if item.path != current)
    return out
