#!/usr/bin/env python3
"""Print coder-lsp's module graph by layer and list every import that runs upward.

The server package is built in floors; a module may import from its own floor and
the floors below, never from a floor above (bottom to top):

0. ground: ``core``, ``errors``, ``safe_io``, ``positions``, ``languages``, ``syntax``,
   ``tokens`` (and the package's ``__init__``);
1. models and settings: ``backends``, ``gguf``, ``registry``, ``settings``,
   ``settings_schema``;
2. ``repo``: the workspace index and repository context;
3. ``completion``: the pipeline's stages;
4. the server: ``engine``, ``documents``, ``transport``, ``server``, ``download``,
   ``fetch``, ``cli``, ``__main__``.

The graph is read from the source's AST (nothing is imported), so lazy imports inside
functions and ``TYPE_CHECKING`` imports count too: they are dependencies all the same.

Usage: ``python scripts/structure.py [PACKAGE_DIR]`` (default: ``lsp_server`` next to this
script's folder). Exit status 1 when any import runs upward or a module has no floor.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "lsp_server"

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "ground",
        ("__init__", "core", "errors", "safe_io", "positions", "languages", "syntax", "tokens"),
    ),
    ("models and settings", ("backends", "gguf", "registry", "settings", "settings_schema")),
    ("repo", ("repo",)),
    ("completion", ("completion",)),
    (
        "server",
        ("engine", "documents", "transport", "server", "download", "fetch", "cli", "__main__"),
    ),
)
"""Floors, bottom first: each names the top-level modules or sub-packages on it."""


@dataclass(frozen=True, slots=True)
class Edge:
    """One import of a server module by another."""

    source: str
    """Importing module, dotted below the package (``repo.index``)."""
    target: str
    """Imported module, dotted below the package (``completion.context``)."""
    line: int
    lazy: bool
    """True for an import inside a function or an ``if TYPE_CHECKING`` block."""


def layer_of(module: str) -> int | None:
    """Index in :data:`LAYERS` of ``module`` (dotted below the package), or None."""
    top = module.split(".", 1)[0]
    for index, (_name, members) in enumerate(LAYERS):
        if top in members:
            return index
    return None


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def _modules(root: Path) -> dict[str, Path]:
    return {_module_name(root, p): p for p in sorted(root.rglob("*.py"))}


def _resolve(target: str, known: dict[str, Path]) -> str | None:
    """``target`` (dotted below the package) as a known module, or its nearest parent."""
    while target:
        if target in known:
            return target
        target = target.rpartition(".")[0]
    return "__init__" if "__init__" in known else None


def _imports(tree: ast.Module, module: str, is_package: bool) -> list[tuple[str, int, bool]]:
    """(dotted target, line, lazy) of every import of the package in ``tree``."""
    found: list[tuple[str, int, bool]] = []
    prefix = PACKAGE + "."

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                inner = True
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name == PACKAGE or alias.name.startswith(prefix):
                        found.append((alias.name[len(prefix) :], child.lineno, lazy))
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = module.split(".") if is_package else module.split(".")[:-1]
                    base = base[: len(base) - (child.level - 1)]
                    full = ".".join([*base, child.module or ""]).strip(".")
                elif child.module and (child.module == PACKAGE or child.module.startswith(prefix)):
                    full = child.module[len(prefix) :] if child.module != PACKAGE else ""
                else:
                    continue
                for alias in child.names:
                    name = f"{full}.{alias.name}" if full else alias.name
                    found.append((name, child.lineno, lazy))
            visit(child, inner)

    visit(tree, False)
    return found


def module_graph(root: Path) -> tuple[dict[str, Path], list[Edge]]:
    """Every module under the package folder ``root`` and every import between them."""
    known = _modules(root)
    edges: list[Edge] = []
    for module, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for target, line, lazy in _imports(tree, module, path.name == "__init__.py"):
            resolved = _resolve(target, known)
            if resolved is not None and resolved != module:
                edges.append(Edge(module, resolved, line, lazy))
    return known, edges


def upward_edges(root: Path) -> list[Edge]:
    """The imports under ``root`` that run from a floor to a floor above it."""
    _known, edges = module_graph(root)
    out = []
    for edge in edges:
        low, high = layer_of(edge.source), layer_of(edge.target)
        if low is not None and high is not None and high > low:
            out.append(edge)
    return out


def unplaced(root: Path) -> list[str]:
    """Modules under ``root`` that belong to no floor (a new top-level module)."""
    known, _edges = module_graph(root)
    return [module for module in known if layer_of(module) is None]


def report(root: Path) -> tuple[str, int]:
    """The printout for the package folder ``root`` and the exit status it earns."""
    known, edges = module_graph(root)
    lines: list[str] = []
    by_source: dict[str, list[Edge]] = {}
    for edge in edges:
        by_source.setdefault(edge.source, []).append(edge)
    for index in reversed(range(len(LAYERS))):
        name = LAYERS[index][0]
        lines.append(f"[{index}] {name}")
        for module in known:
            if layer_of(module) != index:
                continue
            lines.append(f"    {module}  ({_lines(known[module])} lines)")
            targets = sorted({e.target for e in by_source.get(module, [])})
            if targets:
                lines.append(f"        -> {', '.join(targets)}")
    bad = upward_edges(root)
    loose = unplaced(root)
    lines.append("")
    if loose:
        lines.append("modules on no floor (add them to LAYERS in scripts/structure.py):")
        lines += [f"    {module}" for module in loose]
    if bad:
        lines.append(f"upward imports: {len(bad)}")
        for edge in bad:
            tag = " (lazy)" if edge.lazy else ""
            upper = LAYERS[layer_of(edge.target) or 0][0]
            lines.append(f"    {edge.source}:{edge.line} -> {edge.target}  [{upper} is above]{tag}")
    else:
        lines.append("upward imports: none")
    return "\n".join(lines), 1 if bad or loose else 0


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def main(argv: list[str]) -> int:
    """Print the structure of the package folder given (or the repository's own)."""
    default = Path(__file__).resolve().parent.parent / PACKAGE
    root = Path(argv[1]) if len(argv) > 1 else default
    text, status = report(root)
    print(text)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
